# Node runtime tests (issue 5): unit tests of the durable log and the config, the log
# record fuzz target, and the multi-process integration tests of shoald.
shoal_add_test(NAME test_raftlog SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_raftlog.c
               LIBS shoal_rlog LABELS unit)
shoal_add_test(NAME test_node_config
               SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_node_config.c
               LIBS shoal_nodecfg LABELS unit)
shoal_add_fuzzer(NAME fuzz_raftlog SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_raftlog.c
                 LIBS shoal_rlog)
