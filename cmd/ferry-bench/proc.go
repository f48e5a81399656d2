package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// proc is a child process of the benchmark with its output in a log file.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	stdout string
	done   chan struct{}
	err    error
}

// startProc runs argv in its own session, so it gets its own scheduler
// autogroup whose priority boost can raise, and is killed if we die.
func startProc(name, dir string, argv []string, stdoutFile bool, boost int, log *zap.Logger) (*proc, error) {
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = logf
	cmd.Stdout = logf
	var outf *os.File
	if stdoutFile {
		p.stdout = filepath.Join(dir, name+".out")
		if outf, err = os.Create(p.stdout); err != nil {
			logf.Close()
			return nil, err
		}
		cmd.Stdout = outf
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(logf, "# %s\n", strings.Join(argv, " "))
	if err := cmd.Start(); err != nil {
		logf.Close()
		if outf != nil {
			outf.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.cmd = cmd
	log.Debug("started", zap.String("proc", name), zap.Int("pid", cmd.Process.Pid), zap.Strings("argv", argv))
	if boost != 0 {
		// The session's autogroup competes with other sessions as one
		// task: its nice value is what a boost must change.
		ag := fmt.Sprintf("/proc/%d/autogroup", cmd.Process.Pid)
		if err := os.WriteFile(ag, []byte(strconv.Itoa(boost)), 0); err != nil {
			log.Warn("cannot raise scheduling priority", zap.String("proc", name), zap.Error(err))
		}
	}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		if outf != nil {
			outf.Close()
		}
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits, then SIGKILL.
func (p *proc) stop(grace time.Duration) error {
	if p == nil || p.exited() {
		return p.exitErr()
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s ignored SIGTERM for %s and was killed", p.name, grace)
	}
}

// pause stops the process (SIGSTOP) and waits until it is stopped.
func (p *proc) pause() error {
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
		if err != nil {
			return fmt.Errorf("stop %s: %w", p.name, err)
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && b[i+2] == 'T' {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not stop on SIGSTOP", p.name)
		}
		time.Sleep(time.Millisecond)
	}
}

// cont continues a stopped process; nothing for one that runs.
func (p *proc) cont() {
	if p != nil && !p.exited() {
		p.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// wait waits for the process to end by itself, killing it after timeout.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %s and was killed", p.name, timeout)
	}
}

func (p *proc) exitErr() error {
	if p == nil || p.err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", p.name, p.err)
}

// tail returns the last lines of the process's log, for error messages.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logContains reports whether the log has s in it.
func (p *proc) logContains(s string) bool {
	b, err := os.ReadFile(p.log)
	return err == nil && strings.Contains(string(b), s)
}

// waitFor polls cond every 50 ms until it holds, the process exits, the
// context ends or timeout passes.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited while waiting for %s (%v); its log ends:\n%s", p.name, what, p.exitErr(), p.tail(15))
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("timed out after %s waiting for %s", timeout, what)
			if p != nil {
				msg += "; " + p.name + "'s log ends:\n" + p.tail(15)
			}
			return errors.New(msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// removeRuntimeDir deletes what an EAL with this --file-prefix left in
// /var/run/dpdk; prefixes are ours alone (they carry our pid).
func removeRuntimeDir(prefix string) {
	if prefix != "" && !strings.ContainsAny(prefix, "/.") {
		os.RemoveAll(filepath.Join("/var/run/dpdk", prefix))
	}
}
