# The node runtime's benchmark (issue 5): writes/s through shoald's request path and the
# idle cost of a node; see docs/BENCHMARKS.md, "Node runtime".
if(TARGET shoald)
  add_executable(node_bench ${CMAKE_CURRENT_SOURCE_DIR}/node_bench.c)
  target_link_libraries(node_bench PRIVATE shoal_proto shoal_engine PkgConfig::CZMQ PkgConfig::ZMQ)
endif()
