# The daemons (shoald, shoal-broker) use jemalloc's malloc when it is installed. Nearly every
# allocation on their request path is freed by another thread (a job made by the node actor
# and freed after the fsm actor answered, a reply encoded by the fsm and sent by the node);
# glibc's malloc serves that pattern from its arena bins under a lock, which made
# _int_malloc ~9% of the node actor's samples at 8 shards (docs/BENCHMARKS.md, session 12).
# Not under sanitizers: they replace malloc themselves.
option(SHOAL_JEMALLOC "Link shoald and shoal-broker with jemalloc when it is found" ON)
if(SHOAL_JEMALLOC AND NOT SHOAL_SANITIZE)
  pkg_check_modules(JEMALLOC QUIET IMPORTED_TARGET GLOBAL jemalloc)
endif()

function(shoal_link_jemalloc target)
  if(JEMALLOC_FOUND)
    target_link_libraries(${target} PRIVATE PkgConfig::JEMALLOC)
  endif()
endfunction()
