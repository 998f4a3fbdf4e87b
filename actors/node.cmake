# The node runtime (issue 5): the durable Raft log, config, events, the replica actors and
# the shoald daemon. Parts that need the storage engine and the Raft core are built only
# once their libraries exist, so this fragment configures whatever state the tree is in.
add_library(shoal_rlog STATIC ${CMAKE_CURRENT_SOURCE_DIR}/rlog.c
            ${CMAKE_CURRENT_SOURCE_DIR}/rlog_io.c ${CMAKE_CURRENT_SOURCE_DIR}/rlog_io_hold.c)
target_include_directories(shoal_rlog PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(shoal_rlog PUBLIC shoal_engine)

# the ZPL reader of the node's and the broker's configs (zpl.h)
add_library(shoal_zpl STATIC ${CMAKE_CURRENT_SOURCE_DIR}/zpl.c)
target_include_directories(shoal_zpl PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(shoal_zpl PUBLIC shoal_engine PkgConfig::CZMQ)

add_library(shoal_nodecfg STATIC ${CMAKE_CURRENT_SOURCE_DIR}/node_config.c
            ${CMAKE_CURRENT_SOURCE_DIR}/events.c)
target_include_directories(shoal_nodecfg PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(shoal_nodecfg PUBLIC shoal_proto shoal_engine shoal_zpl PkgConfig::CZMQ
                      PkgConfig::ZMQ)

# the socket wait of the node's loop and the broker's (sockset.h)
add_library(shoal_sockset STATIC ${CMAKE_CURRENT_SOURCE_DIR}/sockset.c)
target_include_directories(shoal_sockset PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(shoal_sockset PUBLIC PkgConfig::CZMQ PkgConfig::ZMQ)

if(TARGET shoal_lsm AND TARGET shoal_raft AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/shoald.c)
  add_library(shoal_actors STATIC
    ${CMAKE_CURRENT_SOURCE_DIR}/node.c
    ${CMAKE_CURRENT_SOURCE_DIR}/log_actor.c
    ${CMAKE_CURRENT_SOURCE_DIR}/fsm_actor.c
    ${CMAKE_CURRENT_SOURCE_DIR}/compactor_actor.c
    ${CMAKE_CURRENT_SOURCE_DIR}/transport.c
    ${CMAKE_CURRENT_SOURCE_DIR}/replica.c
    ${CMAKE_CURRENT_SOURCE_DIR}/lead_log.c
    ${CMAKE_CURRENT_SOURCE_DIR}/replies.c
    ${CMAKE_CURRENT_SOURCE_DIR}/shardmap.c
    ${CMAKE_CURRENT_SOURCE_DIR}/split.c
    ${CMAKE_CURRENT_SOURCE_DIR}/split_cmd.c
    ${CMAKE_CURRENT_SOURCE_DIR}/split_fence.c
    ${CMAKE_CURRENT_SOURCE_DIR}/split_fsm.c
    ${CMAKE_CURRENT_SOURCE_DIR}/split_node.c
    ${CMAKE_CURRENT_SOURCE_DIR}/placement.c
    ${CMAKE_CURRENT_SOURCE_DIR}/leader_balance.c
    ${CMAKE_CURRENT_SOURCE_DIR}/meta.c
    ${CMAKE_CURRENT_SOURCE_DIR}/lease_clock.c)
  target_include_directories(shoal_actors PUBLIC ${CMAKE_SOURCE_DIR})
  target_link_libraries(shoal_actors PUBLIC shoal_rlog shoal_nodecfg shoal_sockset shoal_lsm shoal_raft
                        shoal_proto shoal_engine PkgConfig::CZMQ PkgConfig::ZMQ
                        Threads::Threads)
  add_executable(shoald ${CMAKE_CURRENT_SOURCE_DIR}/shoald.c)
  target_link_libraries(shoald PRIVATE shoal_actors)
  shoal_link_jemalloc(shoald)
  shoal_cache_pid(shoald)
endif()
