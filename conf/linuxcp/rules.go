package linuxcp

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"ferry/fib"
)

func (m *Mirror) ownsRule(text string) bool {
	m.own.RLock()
	defer m.own.RUnlock()
	return m.ruleText[text]
}

// subscribeRules signals on every rule change in the namespace: rules
// are few, so each change resyncs them all.
func (m *Mirror) subscribeRules(done <-chan struct{}, nsh *netns.NsHandle) (<-chan struct{}, error) {
	target := netns.None()
	if nsh != nil {
		target = *nsh
	}
	s, err := nl.SubscribeAt(target, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_RULE)
	if err != nil {
		return nil, fmt.Errorf("subscribe to rules: %w", err)
	}
	sig := make(chan struct{}, 1)
	go func() {
		<-done
		s.Close()
	}()
	go func() {
		defer close(sig)
		for {
			if _, _, err := s.Receive(); err != nil {
				return
			}
			select {
			case sig <- struct{}{}:
			default:
			}
		}
	}()
	return sig, nil
}

func (m *Mirror) portOfIface(name string) (string, bool) {
	for port, st := range m.path.States() {
		if st.Iface == name {
			return m.f.PortName(port), true
		}
	}
	return "", false
}

// syncRules makes the FIB's mirrored rules the kernel's.
func (m *Mirror) syncRules() {
	krs, err := m.ns.nl.RuleList(netlink.FAMILY_V4)
	if err != nil {
		m.fail("rules", fmt.Errorf("list rules: %w", err))
		return
	}
	want := map[string]bool{}
	for i := range krs {
		if defaultRule(&krs[i]) {
			continue
		}
		args, ok := ruleArgs(&krs[i], m.portOfIface)
		if !ok {
			m.update(func(st *Status) { st.Skipped["rule"]++ })
			m.warn("rule", "kernel rule not mirrored", zap.String("rule", krs[i].String()))
			continue
		}
		want[strings.Join(args, " ")] = true
	}
	for key := range m.rules {
		if !want[key] {
			if ru, err := fib.ParseRule(strings.Fields(key), m.f); err == nil {
				if err := m.f.DelRule(ru); err != nil {
					m.fail("rules", fmt.Errorf("mirror rule del %s: %w", key, err))
				}
				m.own.Lock()
				delete(m.ruleText, fib.FormatRule(&ru, m.f))
				m.own.Unlock()
			}
			delete(m.rules, key)
		}
	}
	keys := make([]string, 0, len(want))
	for key := range want {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		if m.rules[key] {
			continue
		}
		ru, err := fib.ParseRule(strings.Fields(key), m.f)
		if err == nil {
			err = m.f.AddRule(ru)
		}
		if err != nil {
			m.fail("rules", fmt.Errorf("mirror rule %s: %w", key, err))
			continue
		}
		m.rules[key] = true
		m.own.Lock()
		m.ruleText[fib.FormatRule(&ru, m.f)] = true
		m.own.Unlock()
	}
	m.update(func(st *Status) { st.Rules = len(m.rules) })
}
