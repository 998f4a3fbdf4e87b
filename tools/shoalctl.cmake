# shoalctl: data, admin, cluster and bench commands over libshoal (issue 6).
add_executable(shoalctl
  ${CMAKE_CURRENT_SOURCE_DIR}/shoalctl.c
  ${CMAKE_CURRENT_SOURCE_DIR}/cmd_data.c
  ${CMAKE_CURRENT_SOURCE_DIR}/cmd_admin.c
  ${CMAKE_CURRENT_SOURCE_DIR}/cmd_cluster.c
  ${CMAKE_CURRENT_SOURCE_DIR}/cmd_place.c
  ${CMAKE_CURRENT_SOURCE_DIR}/cmd_bench.c)
target_link_libraries(shoalctl PRIVATE shoal)
shoal_cache_pid(shoalctl) # actors/cached_pid.cmake: bench clients signal between threads too
install(TARGETS shoalctl RUNTIME DESTINATION bin)
