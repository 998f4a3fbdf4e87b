# shoal_cache_pid(target): the executable answers getpid() from memory (cached_pid.c says
# why). Added as a source, not from a library: nothing in the executable itself calls
# getpid(), so an archive member defining it would never be linked.
function(shoal_cache_pid target)
  target_sources(${target} PRIVATE ${CMAKE_SOURCE_DIR}/actors/cached_pid.c)
endfunction()
