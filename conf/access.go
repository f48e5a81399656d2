package conf

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// Access is what a control socket peer may do.
type Access int

const (
	AccessNone     Access = iota
	AccessReadOnly        // show, get and stats
	AccessFull
)

// AccessPolicy decides by the peer's credentials (SO_PEERCRED): root, and
// members of the API group, may do everything; members of the read-only
// group may look.
type AccessPolicy struct {
	Group, ReadOnlyGroup string
	gid, roGID           int // -1: none
}

// NewAccessPolicy resolves the groups' names.
func NewAccessPolicy(group, readOnly string) (*AccessPolicy, error) {
	p := &AccessPolicy{Group: group, ReadOnlyGroup: readOnly, gid: -1, roGID: -1}
	for _, g := range []struct {
		name string
		gid  *int
	}{{group, &p.gid}, {readOnly, &p.roGID}} {
		if g.name == "" {
			continue
		}
		gr, err := user.LookupGroup(g.name)
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", g.name, err)
		}
		*g.gid, _ = strconv.Atoi(gr.Gid)
	}
	return p, nil
}

// SocketMode is the control socket's mode and group: root's alone without
// groups; open to connect with them, the credentials deciding.
func (p *AccessPolicy) SocketMode() (os.FileMode, int) {
	switch {
	case p.gid >= 0 && p.roGID < 0:
		return 0o660, p.gid
	case p.roGID >= 0:
		return 0o666, -1
	}
	return 0o660, -1
}

// Of decides what the peer of c may do.
func (p *AccessPolicy) Of(c net.Conn) (Access, string) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return AccessNone, "not a unix socket"
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return AccessNone, err.Error()
	}
	var cred *syscall.Ucred
	var cerr error
	raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cerr != nil {
		return AccessNone, cerr.Error()
	}
	who := fmt.Sprintf("uid %d pid %d", cred.Uid, cred.Pid)
	if cred.Uid == 0 {
		return AccessFull, who
	}
	groups := peerGroups(cred)
	if p.gid >= 0 && groups[p.gid] {
		return AccessFull, who
	}
	if p.roGID >= 0 && groups[p.roGID] {
		return AccessReadOnly, who
	}
	return AccessNone, who
}

// peerGroups are the peer process's groups: its gid and supplementary
// groups as the kernel holds them now.
func peerGroups(cred *syscall.Ucred) map[int]bool {
	gs := map[int]bool{int(cred.Gid): true}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cred.Pid))
	if err != nil {
		return gs
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Groups:"); ok {
			for _, f := range strings.Fields(rest) {
				if g, err := strconv.Atoi(f); err == nil {
					gs[g] = true
				}
			}
		}
	}
	return gs
}

// ReadOnly reports whether a command only looks: what a read-only peer
// may run.
func ReadOnly(args []string) bool {
	if len(args) == 0 {
		return true
	}
	verb := ""
	if len(args) > 1 {
		verb = args[1]
	}
	looks := verb == "" || verb == "show" || verb == "list" || verb == "ls" || verb == "lst" || verb == "sh" || verb == "get" || verb == "g" || verb == "stats" || verb == "status" || strings.HasPrefix(verb, "-")
	switch args[0] {
	case "stats", "save":
		return true
	case "route", "r", "ro", "rule", "ru", "neigh", "neighbor", "neighbour", "n", "link", "l", "knob", "knobs", "cache", "cp", "control-plane":
		return looks
	}
	return false
}
