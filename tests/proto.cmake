# Wire schema tests, tests of the shared engine pieces, and the frame decoder fuzz target.
shoal_add_test(NAME test_proto SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_proto.c
               LIBS shoal_proto LABELS unit)
shoal_add_test(NAME test_error SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_error.c
               LIBS shoal_engine LABELS unit)
shoal_add_fuzzer(NAME fuzz_frame SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_frame.c
                 LIBS shoal_proto)
shoal_add_test(NAME test_proc SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_proc.c
               LIBS shoal_engine Threads::Threads LABELS unit)
