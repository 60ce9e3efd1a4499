# hnswcConfig.cmake -- lets CMake projects use an installed libhnswc:
#
#   find_package(hnswc 0.1 REQUIRED)
#   target_link_libraries(myapp PRIVATE hnswc::hnswc)        # shared library
#   target_link_libraries(myapp PRIVATE hnswc::hnswc_static) # or the static one
#
# Installed by `make install` into PREFIX/lib/cmake/hnswc/ (with
# hnswcConfigVersion.cmake); point CMAKE_PREFIX_PATH at PREFIX if it is not a
# default one. The paths are found relative to this file, so an installed
# tree can be moved (or staged with DESTDIR) as a whole.
# tests/c/test_install.sh builds a program with it against an installed copy.

cmake_minimum_required(VERSION 3.5)
include(CMakeFindDependencyMacro)
find_dependency(Threads)

get_filename_component(_hnswc_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

if(NOT TARGET hnswc::hnswc)
  add_library(hnswc::hnswc SHARED IMPORTED)
  set_target_properties(hnswc::hnswc PROPERTIES
    IMPORTED_LOCATION "${_hnswc_prefix}/lib/libhnswc.so.0"
    IMPORTED_SONAME "libhnswc.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_hnswc_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads")
endif()

if(NOT TARGET hnswc::hnswc_static)
  add_library(hnswc::hnswc_static STATIC IMPORTED)
  set_target_properties(hnswc::hnswc_static PROPERTIES
    IMPORTED_LOCATION "${_hnswc_prefix}/lib/libhnswc.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_hnswc_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;m")
endif()

foreach(_hnswc_file "${_hnswc_prefix}/include/hnswc.h" "${_hnswc_prefix}/lib/libhnswc.so.0"
                    "${_hnswc_prefix}/lib/libhnswc.a")
  if(NOT EXISTS "${_hnswc_file}")
    set(hnswc_FOUND FALSE)
    set(hnswc_NOT_FOUND_MESSAGE "hnswc: ${_hnswc_file} is missing from the installed tree")
  endif()
endforeach()
unset(_hnswc_file)
unset(_hnswc_prefix)
