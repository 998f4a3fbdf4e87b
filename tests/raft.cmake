# Raft: unit tests of the core, the deterministic simulator (500 seeds, label sim; 20,000
# seeds, label slow) and the planted-bug self-tests that prove each checker fires.
if(TARGET shoal_raft)
  file(GLOB RAFT_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_raft_*.c)
  foreach(src ${RAFT_UNIT_TESTS})
    get_filename_component(name ${src} NAME_WE)
    set(extra_libs)
    if(name STREQUAL "test_raft_codec")
      set(extra_libs shoal_raft_codec)
    endif()
    shoal_add_test(NAME ${name} SOURCES ${src} LIBS shoal_raft ${extra_libs} LABELS unit)
  endforeach()

  # the wire decoder (raft_codec) and the core behind it, fed arbitrary bytes
  shoal_add_fuzzer(NAME fuzz_raft_msg SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sim/fuzz_raft_msg.c
                   LIBS shoal_raft_codec)

  set(SIM_SRCS ${CMAKE_CURRENT_SOURCE_DIR}/sim/sim.c ${CMAKE_CURRENT_SOURCE_DIR}/sim/check.c
               ${CMAKE_CURRENT_SOURCE_DIR}/sim/sim_main.c)
  add_executable(raft_sim ${SIM_SRCS})
  target_link_libraries(raft_sim PRIVATE shoal_raft)
  add_test(NAME raft_sim COMMAND raft_sim --seeds 500)
  # the sanitizer build runs fewer seeds (SHOAL_SIM_SEEDS) to stay well inside the budget
  if(SHOAL_SANITIZE)
    set(SIM_ENV "SHOAL_SIM_SEEDS=150")
  else()
    set(SIM_ENV "SHOAL_SIM_SEEDS=0")
  endif()
  set_tests_properties(raft_sim PROPERTIES LABELS "sim" TIMEOUT 600 ENVIRONMENT "${SIM_ENV}")
  add_test(NAME raft_sim_soak COMMAND raft_sim --seeds 20000 --start 100000)
  set_tests_properties(raft_sim_soak PROPERTIES LABELS "slow;sim" TIMEOUT 7200)

  # The same core built with planted bugs behind a runtime switch (raft_int.h RAFT_BUG_*).
  file(GLOB RAFT_CORE_SRCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/engine/raft/*.c)
  list(REMOVE_ITEM RAFT_CORE_SRCS ${CMAKE_SOURCE_DIR}/engine/raft/raft_codec.c)
  add_library(shoal_raft_buggy STATIC ${RAFT_CORE_SRCS})
  target_compile_definitions(shoal_raft_buggy PUBLIC SHOAL_RAFT_PLANTED_BUGS)
  target_link_libraries(shoal_raft_buggy PUBLIC shoal_engine)
  add_executable(raft_sim_buggy ${SIM_SRCS})
  target_link_libraries(raft_sim_buggy PRIVATE shoal_raft_buggy)
  # bug number, the checker that must report it, first seed, how many seeds it may take.
  # The Figure 8 bug (6: a leader commits an old-term entry by counting replicas) needs a
  # rare interleaving; leader completeness first reports it at seed 136.
  set(PLANTED "1|state machine safety|1|400" "2|election safety|1|400"
              "3|linearizability|1|2000" "4|log matching|1|400" "5|leader completeness|1|400"
              "6|leader completeness|1|600")
  foreach(p ${PLANTED})
    string(REPLACE "|" ";" f "${p}")
    list(GET f 0 bug)
    list(GET f 1 what)
    list(GET f 2 start)
    list(GET f 3 seeds)
    add_test(NAME raft_sim_catches_bug_${bug}
             COMMAND raft_sim_buggy --bug ${bug} --expect "${what}" --start ${start}
                     --seeds ${seeds})
    set_tests_properties(raft_sim_catches_bug_${bug} PROPERTIES LABELS "sim" TIMEOUT 600)
  endforeach()
endif()
