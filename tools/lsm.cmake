# lsm_bench: the storage engine benchmark (docs/BENCHMARKS.md, "Storage engine").
if(TARGET shoal_lsm)
  add_executable(lsm_bench ${CMAKE_CURRENT_SOURCE_DIR}/lsm_bench.c)
  target_link_libraries(lsm_bench PRIVATE shoal_lsm)
endif()
