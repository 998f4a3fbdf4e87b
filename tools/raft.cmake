# raft_bench: the Raft core alone in simulation (throughput, election time after a leader
# crash). See docs/BENCHMARKS.md, Raft section.
if(TARGET shoal_raft)
  add_executable(raft_bench ${CMAKE_CURRENT_SOURCE_DIR}/raft_bench.c)
  target_link_libraries(raft_bench PRIVATE shoal_raft)
endif()
