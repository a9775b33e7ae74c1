# `cpack -G DEB` in the build directory: a .deb of what `cmake --install` installs, under /usr.
# Its dependencies are found by dpkg-shlibdeps from the installed binaries (package dpkg-dev), so
# they are exactly the runtime libraries the binaries link (libc6, libstdc++6, libgcc-s1).
# cpack packs what is built: it must not build (the .deb test runs cpack beside the other tests,
# which would find their programs relinked under them).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)
set(CPACK_PACKAGE_NAME uffdlazy)
set(CPACK_PACKAGE_VENDOR "uffdlazy")
set(CPACK_PACKAGE_CONTACT "uffdlazy developers <uffdlazy@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "lazy paging of a program's anonymous memory through userfaultfd")
set(CPACK_PACKAGE_DESCRIPTION
    "uffdlazy runs unmodified programs with their anonymous memory paged lazily through userfaultfd,
and counts and times every fault. It records a program's memory and restores it into a later run
page by page, and checkpoints a whole process and resumes it in milliseconds.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_GENERATOR DEB)
include(CPack)
