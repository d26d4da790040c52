# Install rules and the Debian package (CPack DEB) for running weftd on the host under
# systemd. Build the package with `cpack -G DEB` in the build directory.
#
# Layout (the .deb installs with prefix /usr):
#   /usr/bin/weftd, /usr/bin/weftctl      the daemon and the status tool
#   /opt/cni/bin/weft                     the CNI plugin, where kubelet's runtime looks
#   /lib/systemd/system/weftd.service     the unit (ExecStart=/usr/bin/weftd)
#   /etc/default/weftd                    the unit's settings (WEFTD_<FLAG>=...), a conffile
#   /etc/weft/net-conf.json               the cluster network, a conffile
#   /usr/share/weft/10-weft.conflist      the CNI conflist to copy into /etc/cni/net.d
#   /usr/share/doc/weft/                  README.md, deploy.md
# The systemd unit names /usr/bin: a `make install` with another prefix is for trying out,
# the package is the supported way.

set(WEFT_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)

install(TARGETS weftd weftctl RUNTIME DESTINATION bin)
install(TARGETS weft RUNTIME DESTINATION /opt/cni/bin)
install(FILES ${WEFT_PACKAGING_DIR}/systemd/weftd.service DESTINATION /lib/systemd/system)
install(FILES ${WEFT_PACKAGING_DIR}/default/weftd DESTINATION /etc/default)
install(FILES ${WEFT_PACKAGING_DIR}/net-conf.json DESTINATION /etc/weft)
install(FILES ${WEFT_PACKAGING_DIR}/10-weft.conflist DESTINATION share/weft)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION share/doc/weft)
if(EXISTS ${PROJECT_SOURCE_DIR}/docs/deploy.md)
  install(FILES ${PROJECT_SOURCE_DIR}/docs/deploy.md DESTINATION share/doc/weft)
endif()

set(CPACK_PACKAGE_NAME weft)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "weft")
set(CPACK_PACKAGE_CONTACT "weft maintainers <maintainers@weft.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "VXLAN overlay network for Kubernetes (flannel-style)")
set(CPACK_PACKAGE_DESCRIPTION
    "weftd leases each node a subnet of the cluster network through the Kubernetes API and keeps the kernel's VXLAN device, neighbour, FDB and route entries equal to the set of peer nodes. This package runs weftd on the host under systemd and installs the weft CNI plugin in /opt/cni/bin.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: computed from the binaries' shared libraries (dpkg-shlibdeps, from dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The weft plugin delegates to bridge and host-local, found on the runtime's CNI path.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "kubernetes-cni | containernetworking-plugins")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${WEFT_PACKAGING_DIR}/debian/conffiles
    ${WEFT_PACKAGING_DIR}/debian/postinst
    ${WEFT_PACKAGING_DIR}/debian/prerm
    ${WEFT_PACKAGING_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)

include(CPack)
