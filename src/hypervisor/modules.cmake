# modules.cmake - the daemon's pluggable parts (scheduling policy, Kubernetes watch), listed
# here so the daemon's CMakeLists can include them without knowing their file names.
set(VGPU_HV_MODULE_SOURCES ${CMAKE_CURRENT_LIST_DIR}/scheduler.c ${CMAKE_CURRENT_LIST_DIR}/share_balance.c
  ${CMAKE_CURRENT_LIST_DIR}/kube_watch.c ${CMAKE_CURRENT_LIST_DIR}/kube_parse.c)
