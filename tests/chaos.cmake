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
                 ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_proc.c
                 LIBS shoal Threads::Threads LABELS integration TIMEOUT 300 ARGS ${CHAOS_SHORT})
  set_tests_properties(chaos_cluster PROPERTIES RESOURCE_GROUPS ports:1)
  # the checks themselves: a planted lost write and doubled increment must be reported
  add_test(NAME chaos_cluster_selftest COMMAND chaos_cluster --plant --duration 3 --writers 2)
  set_tests_properties(chaos_cluster_selftest PROPERTIES LABELS integration TIMEOUT 120
    RESOURCE_GROUPS ports:1 ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR};SHOAL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  add_test(NAME chaos_cluster_long COMMAND chaos_cluster --duration 240 --writers 8)
  set_tests_properties(chaos_cluster_long PROPERTIES LABELS slow TIMEOUT 600 RESOURCE_GROUPS ports:1
    ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR};SHOAL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endif()
# Linearizability under faults (Jepsen-style): clients on a few shared keys while a
# nemesis pauses leaders, kills nodes and the broker, moves leaders; the history is checked
# as a linearizable register per key (tests/integration/linearizable_check.py).
if(TARGET shoald AND TARGET shoal-broker AND TARGET shoal)
  if(SHOAL_SANITIZE)
    set(LIN_SHORT --duration 10 --clients 4)
  else()
    set(LIN_SHORT --duration 14 --clients 8)
  endif()
  shoal_add_test(NAME cluster_linearizable
                 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_linearizable.c
                         ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_proc.c
                 LIBS shoal Threads::Threads LABELS integration TIMEOUT 300 ARGS ${LIN_SHORT})
  set_tests_properties(cluster_linearizable PROPERTIES RESOURCE_GROUPS ports:1)
  add_test(NAME cluster_linearizable_long COMMAND cluster_linearizable --duration 120 --clients 12)
  set_tests_properties(cluster_linearizable_long PROPERTIES LABELS slow TIMEOUT 900 RESOURCE_GROUPS ports:1
    ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR};SHOAL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  # the checker flags planted stale reads, lost writes and impossible cas answers
  add_test(NAME linearizable_check_selftest
           COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/linearizable_check.py --self-test)
  set_tests_properties(linearizable_check_selftest PROPERTIES LABELS unit TIMEOUT 120)
endif()
# Change streams under faults: every watch event checked against the writes (acknowledged
# once, ambiguous at most once), batches whole, prefixes exact, the events folded equal a
# scan, a watcher that fell behind told so and able to go on.
if(TARGET shoald AND TARGET shoal-broker AND TARGET shoal)
  shoal_add_test(NAME cluster_watch_faults
                 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_watch_faults.c
                         ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_proc.c
                 LIBS shoal Threads::Threads LABELS integration TIMEOUT 300)
  set_tests_properties(cluster_watch_faults PROPERTIES RESOURCE_GROUPS ports:1)
  add_test(NAME cluster_watch_faults_long COMMAND cluster_watch_faults)
  set_tests_properties(cluster_watch_faults_long PROPERTIES LABELS slow TIMEOUT 900 RESOURCE_GROUPS ports:1
    ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR};SHOAL_WATCH_FAULTS_LONG=1")
endif()
# Linearizability and durability under online reconfiguration: the same clients while a
# nemesis adds nodes, moves replicas (and cancels moves), splits shards, drains and removes
# nodes, rebalances, moves leaders, each with a kill -9 or SIGSTOP of a node the change
# involves; then the history is checked per key and every acknowledged write must be on
# exactly one shard (tests/integration/cluster_reconfig_linearizable.c).
if(TARGET shoald AND TARGET shoal-broker AND TARGET shoal)
  if(SHOAL_SANITIZE)
    set(RECONFIG_SHORT --duration 14 --clients 4 --fillers 2 --op-timeout 1000)
  else()
    set(RECONFIG_SHORT --duration 18 --clients 6 --fillers 3 --op-timeout 1000)
  endif()
  shoal_add_test(NAME cluster_reconfig_linearizable
                 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_reconfig_linearizable.c
                         ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_proc.c
                 LIBS shoal shoal_proto PkgConfig::CZMQ PkgConfig::ZMQ Threads::Threads
                 LABELS integration TIMEOUT 400 ARGS ${RECONFIG_SHORT})
  set_tests_properties(cluster_reconfig_linearizable PROPERTIES RESOURCE_GROUPS ports:1)
  add_test(NAME cluster_reconfig_linearizable_long
           COMMAND cluster_reconfig_linearizable --duration 150 --clients 10 --fillers 4
                   --op-timeout 800)
  set_tests_properties(cluster_reconfig_linearizable_long PROPERTIES LABELS slow TIMEOUT 900
    RESOURCE_GROUPS ports:1
    ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR};SHOAL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endif()
