# SPDX-License-Identifier: MIT
"""The Kubernetes Pod Security Standards, "baseline" and "restricted"
(kubernetes.io/docs/concepts/security/pod-security-standards, policy
version v1.30), as the Pod Security admission controller applies them to
a pod spec: check(spec) returns the violations, one line each.

Only what a pod template can state is checked; the rules are written out
one by one, in the order of the standard, so that a reader can compare.
"""

BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID",
                 "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID",
                 "SETPCAP", "SETUID", "SYS_CHROOT"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = {None, "", "container_t", "container_init_t", "container_kvm_t",
                 "container_engine_t"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def containers(spec):
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(kind) or []:
            yield f"{kind}[{c.get('name')}]", c


def _seccomp_ok(profile, allow_unset):
    t = (profile or {}).get("type")
    return t in ("RuntimeDefault", "Localhost") or (allow_unset and t is None)


def baseline(spec, annotations=None):
    out = []
    psc = spec.get("securityContext") or {}
    # HostProcess
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("securityContext.windowsOptions.hostProcess must not be true")
    # Host namespaces
    for f in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(f):
            out.append(f"{f} must not be true")
    # HostPath volumes
    for v in spec.get("volumes") or []:
        if "hostPath" in v:
            out.append(f"volume {v.get('name')}: hostPath is not allowed")
    # Sysctls
    for s in psc.get("sysctls") or []:
        if s.get("name") not in SAFE_SYSCTLS:
            out.append(f"sysctl {s.get('name')} is not in the safe set")
    # AppArmor (pod level), SELinux and seccomp (pod level)
    if (psc.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
        out.append("securityContext.appArmorProfile.type must be RuntimeDefault or Localhost")
    for k, v in (annotations or {}).items():
        if k.startswith("container.apparmor.security.beta.kubernetes.io/") and \
                v != "runtime/default" and not v.startswith("localhost/"):
            out.append(f"annotation {k}: {v} is not allowed")
    out += _selinux(psc.get("seLinuxOptions"), "securityContext")
    if not _seccomp_ok(psc.get("seccompProfile"), True):
        out.append("securityContext.seccompProfile.type must not be Unconfined")
    for where, c in containers(spec):
        sc = c.get("securityContext") or {}
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"{where}: windowsOptions.hostProcess must not be true")
        # Privileged containers
        if sc.get("privileged"):
            out.append(f"{where}: privileged must not be true")
        # Capabilities
        for cap in (sc.get("capabilities") or {}).get("add") or []:
            if cap not in BASELINE_CAPS:
                out.append(f"{where}: capability {cap} may not be added")
        # Host ports
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"{where}: hostPort must not be set")
        if (sc.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
            out.append(f"{where}: appArmorProfile.type must be RuntimeDefault or Localhost")
        out += _selinux(sc.get("seLinuxOptions"), where)
        # /proc mount type
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"{where}: procMount must be Default")
        if not _seccomp_ok(sc.get("seccompProfile"), True):
            out.append(f"{where}: seccompProfile.type must not be Unconfined")
    return out


def _selinux(opts, where):
    opts = opts or {}
    out = []
    if opts.get("type") not in SELINUX_TYPES:
        out.append(f"{where}: seLinuxOptions.type {opts.get('type')} is not allowed")
    for f in ("user", "role"):
        if opts.get(f):
            out.append(f"{where}: seLinuxOptions.{f} must not be set")
    return out


def restricted(spec, annotations=None):
    out = baseline(spec, annotations)
    psc = spec.get("securityContext") or {}
    # Volume types
    for v in spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            out.append(f"volume {v.get('name')}: type {sorted(kinds)} is not allowed")
    for where, c in containers(spec):
        sc = c.get("securityContext") or {}
        # Privilege escalation: must be set to false.
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{where}: allowPrivilegeEscalation must be false")
        # Running as non-root: the container's setting, else the pod's.
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if non_root is not True:
            out.append(f"{where}: runAsNonRoot must be true (pod or container)")
        # Running as a non-root user
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            out.append(f"{where}: runAsUser must not be 0")
        # Seccomp: RuntimeDefault or Localhost, the container's or the pod's.
        profile = sc.get("seccompProfile") or psc.get("seccompProfile")
        if not _seccomp_ok(profile, False):
            out.append(f"{where}: seccompProfile.type must be RuntimeDefault or Localhost")
        # Capabilities: drop ALL, add at most NET_BIND_SERVICE.
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{where}: capabilities.drop must contain ALL")
        for cap in caps.get("add") or []:
            if cap != "NET_BIND_SERVICE":
                out.append(f"{where}: capability {cap} may not be added")
    if psc.get("runAsUser") == 0:
        out.append("securityContext.runAsUser must not be 0")
    return out
