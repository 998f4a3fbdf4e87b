# Node runtime tests (issue 5): unit tests of the durable log and the config, the log
# record fuzz target, and the multi-process integration tests of shoald (label
# `integration`, each under a minute; they need the shoald target, so they exist only once
# the storage engine and Raft libraries build).
shoal_add_test(NAME test_raftlog SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_raftlog.c
               LIBS shoal_rlog LABELS unit)
shoal_add_test(NAME test_node_config
               SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_node_config.c
               LIBS shoal_nodecfg LABELS unit)
shoal_add_fuzzer(NAME fuzz_raftlog SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_raftlog.c
                 LIBS shoal_rlog)
# the node's config decoder (and the ZPL reader it shares with the broker), fuzzed
shoal_add_fuzzer(NAME fuzz_node_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_node_config.c
                 LIBS shoal_nodecfg)

if(TARGET shoald)
  # shoald's power-cut test mode (SHOAL_TEST_UNSYNCED=hold): the log's and the engine's
  # wrappers hold unsynced bytes in memory; a child that dies leaves only the synced ones
  shoal_add_test(NAME test_unsynced_hold SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_unsynced_hold.c
                 LIBS shoal_rlog shoal_lsm LABELS unit)
  shoal_add_test(NAME test_node_fsm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_node_fsm.c
                 LIBS shoal_actors LABELS unit)
  # the shard map's decoder and the edits on whatever it decodes, fuzzed
  shoal_add_fuzzer(NAME fuzz_shardmap SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_shardmap.c
                   LIBS shoal_actors)
  # the shard map's bootstrap, decoding and every edit of the metadata leader
  shoal_add_test(NAME test_shardmap SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_shardmap.c
                 LIBS shoal_actors LABELS unit)
  # leader balancing: preferred leaders from the map, the hand-over decision, the back-off
  shoal_add_test(NAME test_leader_balance
                 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_leader_balance.c
                 LIBS shoal_actors LABELS unit)
  shoal_add_test(NAME test_lease_clock SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_lease_clock.c
                 LIBS shoal_actors LABELS unit)
  # the data cut of add-shard by split: both sides, a power loss, a second apply
  shoal_add_test(NAME test_split SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_split.c
                 LIBS shoal_actors LABELS unit)
  # the split decoders: the stored fence, the target's configuration, the SPLIT command
  shoal_add_fuzzer(NAME fuzz_split SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_split.c
                   LIBS shoal_actors)
  # the fsm applying SPLITs: the cut, the fence (reloaded, cumulative), refusals
  shoal_add_test(NAME test_split_fsm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_split_fsm.c
                 LIBS shoal_actors LABELS unit)
  # the leader's copy of its staged entries (applied as soon as they commit)
  shoal_add_test(NAME test_lead_log SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_lead_log.c
                 LIBS shoal_actors LABELS unit)
  # the node loop's socket wait: what wakes it, which sockets it asks, why uses are marked
  shoal_add_test(NAME test_sockset SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sockset.c
                 LIBS shoal_actors LABELS unit)
  shoal_add_test(NAME test_node_transport
                 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_node_transport.c
                 LIBS shoal_actors LABELS unit)
  add_executable(node_client ${CMAKE_CURRENT_SOURCE_DIR}/integration/node_client.c)
  target_link_libraries(node_client PRIVATE shoal_proto shoal_engine PkgConfig::CZMQ PkgConfig::ZMQ)
  file(GLOB NODE_IT CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/integration/node_*.sh)
  list(REMOVE_ITEM NODE_IT ${CMAKE_CURRENT_SOURCE_DIR}/integration/node_lib.sh)
  foreach(t ${NODE_IT})
    get_filename_component(name ${t} NAME_WE)
    add_test(NAME ${name} COMMAND bash ${t})
    set_tests_properties(${name} PROPERTIES LABELS "integration" TIMEOUT 120
      RESOURCE_GROUPS ports:1 ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR}"
      SKIP_RETURN_CODE 77)
  endforeach()
endif()
