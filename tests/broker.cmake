# Tests of the hash ring, the client library, the broker and shoalctl (issue 6).
shoal_add_test(NAME test_ring SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ring.c
               LIBS shoal_engine LABELS unit)
shoal_add_test(NAME test_client_broker SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_client_broker.c
               LIBS shoal_broker shoal LABELS unit TIMEOUT 120)
