# Storage engine tests (engine/lsm): unit tests per component, the randomized model test,
# crash and corruption tests, and the decoder fuzz targets (run as unit tests too).
set(LSM_TEST_DIR ${CMAKE_CURRENT_SOURCE_DIR})
if(TARGET shoal_lsm)
  shoal_add_test(NAME test_lsm_model SOURCES ${LSM_TEST_DIR}/unit/test_lsm_model.c
                 LIBS shoal_lsm LABELS unit TIMEOUT 120)
  shoal_add_test(NAME test_lsm_model_long SOURCES ${LSM_TEST_DIR}/unit/test_lsm_model.c
                 LIBS shoal_lsm LABELS slow ARGS long TIMEOUT 900)
endif()
if(TARGET shoal_lsm)
  shoal_add_test(NAME test_lsm_format SOURCES ${LSM_TEST_DIR}/unit/test_lsm_format.c
                 LIBS shoal_lsm LABELS unit TIMEOUT 60)
endif()
if(TARGET shoal_lsm)
  shoal_add_test(NAME test_lsm_db SOURCES ${LSM_TEST_DIR}/unit/test_lsm_db.c
                 LIBS shoal_lsm Threads::Threads LABELS unit TIMEOUT 120)
endif()
if(TARGET shoal_lsm)
  shoal_add_test(NAME test_lsm_crash SOURCES ${LSM_TEST_DIR}/unit/test_lsm_crash.c
                 LIBS shoal_lsm LABELS unit TIMEOUT 120)
endif()
if(TARGET shoal_lsm)
  shoal_add_test(NAME test_lsm_corrupt SOURCES ${LSM_TEST_DIR}/unit/test_lsm_corrupt.c
                 LIBS shoal_lsm LABELS unit TIMEOUT 60)
endif()
if(TARGET shoal_lsm)
  foreach(fz block wal manifest)
    shoal_add_fuzzer(NAME fuzz_lsm_${fz} SOURCES ${LSM_TEST_DIR}/fuzz/fuzz_lsm_${fz}.c
                     LIBS shoal_lsm)
  endforeach()
endif()
