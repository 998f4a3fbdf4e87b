# End-to-end fault tests of a whole local cluster (tests/integration/chaos_*): writers
# through libshoal while a seeded nemesis kills, stops and restarts nodes and the broker
# and moves leaders; then every acknowledged write is checked. `integration` runs a short
# schedule (leaner in the sanitizer build), `slow` a long one.
if(TARGET shoald AND TARGET shoal-broker AND TARGET shoal)
  if(SHOAL_SANITIZE)
    set(CHAOS_SHORT --duration 15 --writers 3)
  else()
    set(CHAOS_SHORT --duration 25 --writers 6)
  endif()
  shoal_add_test(NAME chaos_cluster SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/chaos_cluster.c
                 LIBS shoal Threads::Threads LABELS integration TIMEOUT 300 ARGS ${CHAOS_SHORT})
  set_tests_properties(chaos_cluster PROPERTIES RUN_SERIAL ON)
  # the checks themselves: a planted lost write and doubled increment must be reported
  add_test(NAME chaos_cluster_selftest COMMAND chaos_cluster --plant --duration 3 --writers 2)
  set_tests_properties(chaos_cluster_selftest PROPERTIES LABELS integration TIMEOUT 120
    RUN_SERIAL ON ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR};SHOAL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  add_test(NAME chaos_cluster_long COMMAND chaos_cluster --duration 240 --writers 8)
  set_tests_properties(chaos_cluster_long PROPERTIES LABELS slow TIMEOUT 600 RUN_SERIAL ON
    ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR};SHOAL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endif()
