# `make deb`: a Debian package through CPack's DEB generator, from the same install rules as
# `make install` (see README "Dependencies" for why CPack rather than debhelper). Build it from
# a tree configured with CMAKE_INSTALL_PREFIX=/usr (the Makefile's deb target does).
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "veto")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "Veto maintainers <veto@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "policy-enforcing DNS forwarder")
# the extended description (CPack puts the summary above it and indents it)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "Veto puts each client of the network in a group, checks every DNS query
against that group's policy, sinkholes vendor telemetry or refuses everything
for banned handsets, forwards and caches the rest, and logs who tried what.")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
# libraries from dpkg-shlibdeps: it reads the binary's DT_NEEDED entries (libuv1, libldns3, ...,
# libmicrohttpd12 and libcrypt1 for the HTTP listener) and writes their Depends with versions;
# adduser for the postinst
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ieee-data, logrotate")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bind9-dnsutils")
# absolute destinations (/etc/veto, /lib/systemd/system) are staged under DESTDIR
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_STRIP_FILES ON)
configure_file(${CMAKE_CURRENT_LIST_DIR}/conffiles.in ${CMAKE_BINARY_DIR}/deb/conffiles @ONLY)
foreach(script postinst prerm postrm)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/${script} ${CMAKE_BINARY_DIR}/deb/${script} COPYONLY
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
    WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_BINARY_DIR}/deb/conffiles ${CMAKE_BINARY_DIR}/deb/postinst
  ${CMAKE_BINARY_DIR}/deb/prerm ${CMAKE_BINARY_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
