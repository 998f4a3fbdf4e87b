# Tests of the hash ring, the client library, the broker and shoalctl (issue 6).
shoal_add_test(NAME test_ring SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ring.c
               LIBS shoal_engine LABELS unit)
shoal_add_test(NAME test_client_broker SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_client_broker.c
               LIBS shoal_broker shoal LABELS unit TIMEOUT 120)
# libshoal retrying a scan or batch whole after a split changed the shards (fake broker).
shoal_add_test(NAME test_client_reroute SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_client_reroute.c
               LIBS shoal LABELS unit)
# A watch with a key prefix fills the changes the broker's counts show it lost.
shoal_add_test(NAME test_watch_seqs SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_watch_seqs.c
               LIBS shoal LABELS unit)
# shoal_connect/shoal_destroy from 16 threads at once, each round in a fresh process.
shoal_add_test(NAME test_client_connect SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_client_connect.c
               LIBS shoal Threads::Threads LABELS unit TIMEOUT 120)
# libshoal refusing bad arguments (NULL buffers, ports, shard numbers, watch prefixes).
shoal_add_test(NAME test_client_args SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_client_args.c
               LIBS shoal LABELS unit)
# <shoal.h> alone declares the SHOAL_E... codes, with engine/error.h's values.
shoal_add_test(NAME test_shoal_header SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_shoal_header.c
               ${CMAKE_CURRENT_SOURCE_DIR}/unit/shoal_header_codes.c LIBS shoal LABELS unit)
# shoalctl's exit codes and one-line errors for bad input to every command (no cluster).
add_test(NAME test_shoalctl_args COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_shoalctl_args.sh)
set_tests_properties(test_shoalctl_args PROPERTIES LABELS unit TIMEOUT 120
  ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR}")

# Integration tests on a local cluster (need shoald, so only once it builds).
# cluster_script(NAME TIMEOUT): tests/integration/NAME.sh (it starts a cluster: one "ports"
# slot, tests/ports.json, so at most two such tests run at once, in disjoint port ranges).
function(cluster_script name timeout)
  add_test(NAME ${name} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/${name}.sh)
  set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT ${timeout} RESOURCE_GROUPS ports:1
    ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR}" SKIP_RETURN_CODE 77)
endfunction()
if(TARGET shoald)
  shoal_add_test(NAME cluster_client SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_client.c
                 ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_proc.c
                 LIBS shoal shoal_proto PkgConfig::CZMQ PkgConfig::ZMQ Threads::Threads
                 LABELS integration TIMEOUT 240)
  set_tests_properties(cluster_client PROPERTIES RESOURCE_GROUPS ports:1)
  cluster_script(cluster_cli 240)
  cluster_script(cluster_up_errors 120)
  # Online shard-map changes: replica moves (leader and follower), a node joining, writers
  # running throughout, bad admin input (docs/OPERATIONS.md, "Changing the placement").
  add_executable(move_writer ${CMAKE_CURRENT_SOURCE_DIR}/integration/move_writer.c)
  target_link_libraries(move_writer PRIVATE shoal)
  add_executable(split_scanner ${CMAKE_CURRENT_SOURCE_DIR}/integration/split_scanner.c)
  target_link_libraries(split_scanner PRIVATE shoal)
  cluster_script(cluster_move 300)
  # the metadata group moved off its leader under writes, its old host removed, a new host restarted
  cluster_script(cluster_meta 180)
  # cancelling unfinished moves (a shard's and the metadata group's) under writes
  cluster_script(cluster_cancel 180)
  # idle groups that lose their quorum stop showing a leader; they elect again on return
  cluster_script(cluster_quorum_lost 120)
  # a node on a removed node's endpoint, of another cluster, refuses the first's map
  cluster_script(cluster_foreign 120)
  # a prefix watcher across broker restarts: nothing acknowledged goes unseen
  cluster_script(cluster_watch_restart 120)
  # a stopped prefix watcher whose changes the XPUB dropped is told, not left stale
  cluster_script(cluster_watch_slow 150)
  # the change window refilled from the Raft log after every node restarted (down, kill -9)
  cluster_script(cluster_window_restart 180)
  # 48 clients writing 1 MB values: slower, but no leader lost and every node up
  cluster_script(cluster_big_values 180)
  # a scan over 80 MB of values: pages of at most 16 MiB, every key once
  cluster_script(cluster_scan_pages 240)
  # the Raft log bounded by bytes: RSS after 1 MB writes (a measurement, so label slow)
  add_test(NAME cluster_big_values_memory
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_big_values_memory.sh)
  set_tests_properties(cluster_big_values_memory PROPERTIES LABELS "integration;slow" TIMEOUT 180
    RESOURCE_GROUPS ports:1 ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR}" SKIP_RETURN_CODE 77)
  # a node stopped while deleting a replica moved away finishes the deletion at its start
  cluster_script(cluster_drop_crash 120)
  # leader balancing: 2/2/2 leaders on 3 nodes with 6 shards, kept through a kill and restart
  cluster_script(cluster_balance 240)
  # add-shard online: two splits under pipelined writes, the source's leader killed
  cluster_script(cluster_split 120)
  # scaling out and in: rebalance onto a new node, drain-node, remove-node, under writes
  cluster_script(cluster_scale 180)
  # snapshot marks every 16 entries under 128 clients, then every node restarted
  cluster_script(cluster_marks 120)
  # a client pointed at a node's endpoint: keys of other shards refused, none misplaced
  cluster_script(cluster_node_endpoint 120)
  # start-node on a disk still full: exit 3 with the node's error, not "started"
  cluster_script(cluster_start_full_disk 120)
  # power cuts: every node killed at once with its unsynced file data dropped
  # (SHOAL_TEST_UNSYNCED=hold), restarted; every acknowledged write reads back. The selftest
  # runs it with --fsync never, where the check must find acknowledged writes lost.
  add_executable(power_cut_writer ${CMAKE_CURRENT_SOURCE_DIR}/integration/power_cut_writer.c)
  target_link_libraries(power_cut_writer PRIVATE shoal PkgConfig::CZMQ)
  cluster_script(cluster_power_cut 180)
  add_test(NAME cluster_power_cut_selftest
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_power_cut.sh --selftest)
  set_tests_properties(cluster_power_cut_selftest PROPERTIES LABELS integration TIMEOUT 120
    RESOURCE_GROUPS ports:1 ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR}" SKIP_RETURN_CODE 77)
  # storage/fsync = never survives a crash of every node (kill -9 without the hold mode)
  add_test(NAME cluster_crash_fsync_never
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/cluster_power_cut.sh --crash-never)
  set_tests_properties(cluster_crash_fsync_never PROPERTIES LABELS integration TIMEOUT 120
    RESOURCE_GROUPS ports:1 ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR}" SKIP_RETURN_CODE 77)
endif()

# The broker's config decoder, fuzzed (a unit test over random and mutated ZPL otherwise).
shoal_add_fuzzer(NAME fuzz_broker_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_broker_config.c
                 LIBS shoal_broker)

# shoalctl's argument decoding, fuzzed in dry-run mode (nothing is contacted or started).
set_source_files_properties(${CMAKE_SOURCE_DIR}/tools/shoalctl.c PROPERTIES
  COMPILE_DEFINITIONS main=shoalctl_main)
shoal_add_fuzzer(NAME fuzz_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_cli.c
  ${CMAKE_SOURCE_DIR}/tools/shoalctl.c ${CMAKE_SOURCE_DIR}/tools/cmd_data.c
  ${CMAKE_SOURCE_DIR}/tools/cmd_admin.c ${CMAKE_SOURCE_DIR}/tools/cmd_cluster.c
  ${CMAKE_SOURCE_DIR}/tools/cmd_bench.c ${CMAKE_SOURCE_DIR}/tools/cmd_place.c
  LIBS shoal)
shoal_add_test(NAME test_broker_map SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_broker_map.c
               LIBS shoal_broker shoal LABELS unit)
