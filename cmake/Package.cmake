# Installation and the CMake package: `cmake --install build --prefix P`
# puts snnc in P/bin, the README, docs/ and examples/ in P/share/doc/snnc,
# and snncConfig.cmake, snncConfigVersion.cmake, the exported target
# snnc::snnc and snnc_generate (snncGenerate.cmake) in P/lib/cmake/snnc,
# so that a project can write find_package(snnc) (docs/cmake.md).
# A project that builds snnc itself (add_subdirectory, FetchContent) gets
# the same snnc::snnc, as an alias, and snnc_generate.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

add_executable(snnc::snnc ALIAS snnc)
include(${CMAKE_CURRENT_LIST_DIR}/snncGenerate.cmake)

set(SNNC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/snnc CACHE STRING
    "where the package config goes, under the install prefix")
mark_as_advanced(SNNC_CMAKE_DIR)

install(TARGETS snnc EXPORT snncTargets RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT snncTargets NAMESPACE snnc:: FILE snncTargets.cmake DESTINATION ${SNNC_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/snncConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/snncConfig.cmake INSTALL_DESTINATION ${SNNC_CMAKE_DIR})
# 0.x: a minor version may change the generated API
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/snncConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/snncConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/snncConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/snncGenerate.cmake
        DESTINATION ${SNNC_CMAKE_DIR})

# The documentation keeps the tree's layout, so that its links work.
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
        FILES_MATCHING PATTERN "*.md")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
