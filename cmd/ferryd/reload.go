package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"ferry/conf"
)

// reloadHook is what SIGHUP runs once serve is ready for it.
var reloadHook atomic.Pointer[func()]

// reloader re-reads the configuration file and applies it in place.
type reloader struct {
	mu     sync.Mutex
	file   string
	cur    *conf.Config
	router *conf.Router
	log    *zap.Logger
}

func (rl *reloader) reload() (string, error) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	sdNotify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	defer sdNotify("READY=1")
	next, err := conf.Load(rl.file)
	if err != nil {
		return "", err
	}
	out, err := rl.router.Reload(rl.cur, next, rl.file)
	if err != nil {
		return out, err
	}
	rl.cur = next
	return out, nil
}

// save renders the running state as a configuration file.
func (rl *reloader) save() ([]byte, error) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.router.Save(rl.cur)
}

// setReload gives router its reload (unless ferryd runs the embedded
// demo) and save, and SIGHUP the reload; the returned func takes SIGHUP's
// back.
func setReload(router *conf.Router, cfg *conf.Config, file string, log *zap.Logger) func() {
	rl := &reloader{file: file, cur: cfg, router: router, log: log}
	if !strings.HasPrefix(file, "<") {
		router.ReloadConfig = rl.reload
	}
	router.SaveConfig = rl.save
	onHUP := func() {
		if router.ReloadConfig == nil {
			log.Warn("SIGHUP: nothing to reload (ferryd runs the embedded demo)")
			return
		}
		if out, err := router.ReloadConfig(); err != nil {
			log.Error("reload failed, the running configuration is kept", zap.Error(err))
		} else {
			log.Info("configuration reloaded", zap.String("file", file), zap.String("applied", out))
		}
	}
	reloadHook.Store(&onHUP)
	return func() { reloadHook.Store(nil) }
}
