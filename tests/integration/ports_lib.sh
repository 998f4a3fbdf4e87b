# ports_lib.sh - the port range a cluster or node test may use (sourced by cluster_lib.sh
# and node_lib.sh; cluster_proc.c reads the same variables).
# `tools/test` runs ctest with tests/ports.json: two tests that start processes run at once,
# each holding one "ports" slot, and slot N's tests keep to their own half of the ports
# below the kernel's ephemeral range (32768+), so two tests never race for one port.
# Outside ctest's allocation: SHOAL_TEST_PORTS=LO-HI if set, else 10000-32000.
test_ports() {
    case "${CTEST_RESOURCE_GROUP_0_PORTS:-}" in
    id:0,*) echo 10000-20999 ;;
    id:1,*) echo 21000-31999 ;;
    *) echo "${SHOAL_TEST_PORTS:-10000-32000}" ;;
    esac
}
