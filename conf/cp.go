package conf

import (
	"fmt"
	"sort"
	"strings"

	"ferry/conf/linuxcp"
	"ferry/fib"
)

// Mirror is the control plane's netlink mirror as the control API sees it.
type Mirror interface {
	Status() linuxcp.Status
	SetMirror(on bool)
	// OwnsRoute and OwnsRule tell what the mirror put in the FIB (a rule
	// as FormatRule prints it).
	OwnsRoute(r *fib.Route) bool
	OwnsRule(text string) bool
}

// controlPlane runs 'cp status' and 'cp mirror on|off'.
func (r *Router) controlPlane(args []string) (string, any, error) {
	if r.CP == nil {
		return "", nil, fmt.Errorf("cp: no control plane (add control_plane: to the configuration)")
	}
	if len(args) == 2 && args[0] == "mirror" && (args[1] == "on" || args[1] == "off") {
		r.CP.SetMirror(args[1] == "on")
		return "", nil, nil
	}
	if len(args) > 1 || len(args) == 1 && args[0] != "status" {
		return "", nil, fmt.Errorf("cp: try 'cp status' or 'cp mirror on|off'")
	}
	st := r.CP.Status()
	var b strings.Builder
	state := "off"
	if st.Running {
		state = "on"
	}
	ns := st.Netns
	if ns == "" {
		ns = "ferryd's own"
	}
	fmt.Fprintf(&b, "mirror %s, netns %s\nroutes mirrored %d\nrules mirrored %d\nroute events %d\nresyncs %d (last %s, %.2f s)\nfailed %d\n",
		state, ns, st.Routes, st.Rules, st.Events, st.Resyncs, st.LastResync, st.ResyncTook, st.Failed)
	keys := make([]string, 0, len(st.Skipped))
	for k := range st.Skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "skipped %s %d\n", k, st.Skipped[k])
	}
	if st.LastError != "" {
		fmt.Fprintf(&b, "last error %s: %s\n", st.LastErrorAt, st.LastError)
	}
	return b.String(), st, nil
}
