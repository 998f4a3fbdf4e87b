# Storage engine tests (engine/lsm): unit tests per component, the randomized model test,
# crash and corruption tests, and the decoder fuzz targets (run as unit tests too).
# The whole `unit` set takes a few seconds; test_lsm_model_long (label slow) runs minutes.
set(LSM_TEST_DIR ${CMAKE_CURRENT_SOURCE_DIR})
if(TARGET shoal_lsm)
  foreach(t format table db model crash corrupt mapres pool)
    shoal_add_test(NAME test_lsm_${t} SOURCES ${LSM_TEST_DIR}/unit/test_lsm_${t}.c
                   LIBS shoal_lsm Threads::Threads LABELS unit TIMEOUT 120)
  endforeach()
  shoal_add_test(NAME test_lsm_model_long SOURCES ${LSM_TEST_DIR}/unit/test_lsm_model.c
                 LIBS shoal_lsm LABELS slow ARGS long TIMEOUT 900)
  # One call per target, names spelled out: tools/fuzz finds targets by grepping these lines.
  shoal_add_fuzzer(NAME fuzz_lsm_block SOURCES ${LSM_TEST_DIR}/fuzz/fuzz_lsm_block.c
                   LIBS shoal_lsm)
  shoal_add_fuzzer(NAME fuzz_lsm_wal SOURCES ${LSM_TEST_DIR}/fuzz/fuzz_lsm_wal.c
                   LIBS shoal_lsm)
  shoal_add_fuzzer(NAME fuzz_lsm_manifest SOURCES ${LSM_TEST_DIR}/fuzz/fuzz_lsm_manifest.c
                   LIBS shoal_lsm)
endif()
