# shoal_add_test(NAME name SOURCES a.c b.c LIBS lib... LABELS unit|sim|integration|slow [TIMEOUT s])
# builds one cmocka test program and registers it with ctest under its labels, so that
# `ctest -L unit` is the quick run and `ctest` the full one.
function(shoal_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "SHOAL_BUILD_DIR=${CMAKE_BINARY_DIR};SHOAL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()

# shoal_add_fuzzer(NAME name SOURCES ... LIBS ...): a libFuzzer target when SHOAL_FUZZ is on;
# otherwise the same source is built with tests/fuzz/standalone_main.c and run over its
# seed corpus plus random inputs as a unit test, so the decoders are exercised in every build.
function(shoal_add_fuzzer)
  cmake_parse_arguments(F "" "NAME" "SOURCES;LIBS" ${ARGN})
  if(SHOAL_FUZZ)
    add_executable(${F_NAME} ${F_SOURCES})
    target_compile_options(${F_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${F_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${F_NAME} PRIVATE ${F_LIBS})
  else()
    add_executable(${F_NAME} ${F_SOURCES} ${CMAKE_SOURCE_DIR}/tests/fuzz/standalone_main.c)
    target_link_libraries(${F_NAME} PRIVATE ${F_LIBS})
    add_test(NAME ${F_NAME} COMMAND ${F_NAME} 20000)
    set_tests_properties(${F_NAME} PROPERTIES LABELS "unit;fuzz" TIMEOUT 300)
  endif()
endfunction()
