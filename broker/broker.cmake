# libshoal (static library `shoal`, public header broker/shoal.h installed as <shoal.h>),
# the broker core (shoal_broker) and the shoal-broker daemon.
add_library(shoal STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/client.c
  ${CMAKE_CURRENT_SOURCE_DIR}/client_admin.c
  ${CMAKE_CURRENT_SOURCE_DIR}/watch.c)
target_include_directories(shoal PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(shoal PUBLIC shoal_proto shoal_engine PkgConfig::CZMQ PkgConfig::ZMQ)
set_target_properties(shoal PROPERTIES PUBLIC_HEADER ${CMAKE_CURRENT_SOURCE_DIR}/shoal.h)
install(TARGETS shoal ARCHIVE DESTINATION lib PUBLIC_HEADER DESTINATION include)
# libshoal is static: a program using the install tree also links the wire code and the
# shared engine pieces it is built on (-lshoal -lshoal_proto -lshoal_engine, then
# protobuf-c, czmq, zmq and xxhash from pkg-config).
install(TARGETS shoal_proto shoal_engine ARCHIVE DESTINATION lib)

add_library(shoal_broker STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/broker.c
  ${CMAKE_CURRENT_SOURCE_DIR}/broker_config.c
  ${CMAKE_CURRENT_SOURCE_DIR}/route.c
  ${CMAKE_CURRENT_SOURCE_DIR}/node_out.c
  ${CMAKE_CURRENT_SOURCE_DIR}/reroute.c
  ${CMAKE_CURRENT_SOURCE_DIR}/admin.c
  ${CMAKE_CURRENT_SOURCE_DIR}/streams.c
  ${CMAKE_CURRENT_SOURCE_DIR}/stream_seqs.c
  ${CMAKE_CURRENT_SOURCE_DIR}/dashboard.c)
target_include_directories(shoal_broker PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(shoal_broker PUBLIC shoal shoal_proto shoal_engine shoal_sockset shoal_zpl PkgConfig::CZMQ
                      PkgConfig::ZMQ)

add_executable(shoal-broker ${CMAKE_CURRENT_SOURCE_DIR}/shoal_broker.c)
target_link_libraries(shoal-broker PRIVATE shoal_broker)
if(COMMAND shoal_link_jemalloc)
  shoal_link_jemalloc(shoal-broker) # actors/jemalloc.cmake
  shoal_cache_pid(shoal-broker) # actors/cached_pid.cmake
endif()
install(TARGETS shoal-broker RUNTIME DESTINATION bin)
