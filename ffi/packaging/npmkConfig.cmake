# CMake package of npmk: `find_package(npmk)` defines
#   npmk::npmk         the shared library (recommended)
#   npmk::npmk_static  the static library, with the system libraries it needs
# The package is relocatable: paths are taken relative to this file (PREFIX/lib/cmake/npmk).
get_filename_component(_npmk_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

include(CMakeFindDependencyMacro)
find_dependency(Threads)

if(NOT TARGET npmk::npmk)
  add_library(npmk::npmk SHARED IMPORTED)
  set_target_properties(npmk::npmk PROPERTIES
    IMPORTED_LOCATION "${_npmk_prefix}/lib/libnpmk.so"
    IMPORTED_SONAME "libnpmk.so"
    INTERFACE_INCLUDE_DIRECTORIES "${_npmk_prefix}/include")

  add_library(npmk::npmk_static STATIC IMPORTED)
  set_target_properties(npmk::npmk_static PROPERTIES
    IMPORTED_LOCATION "${_npmk_prefix}/lib/libnpmk.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_npmk_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m")
endif()

set(npmk_INCLUDE_DIR "${_npmk_prefix}/include")
unset(_npmk_prefix)
