//go:build cgo

package dpdk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// HugeMount is where hugetlbfs is mounted when ferryd mounts it itself.
const HugeMount = "/dev/hugepages"

// EnsureHugepages makes sure at least mb MiB of hugepages are free and
// hugetlbfs is mounted, reserving and mounting them when it can (as root).
func EnsureHugepages(mb int) error {
	size, free, err := hugeInfo()
	if err != nil {
		return err
	}
	if size == 0 {
		return errors.New("the kernel reports no hugepage size")
	}
	need := (mb*1024 + size - 1) / size
	if free < need {
		path := "/proc/sys/vm/nr_hugepages"
		cur, err := readInt(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(cur+need-free)), 0o644); err != nil {
			return fmt.Errorf("reserve %d hugepages: %w", need-free, err)
		}
		if _, free, err = hugeInfo(); err != nil {
			return err
		}
		if free < need {
			return fmt.Errorf("only %d of %d hugepages of %d kB could be reserved", free, need, size)
		}
	}
	mounted, err := hugetlbfsMounted()
	if err != nil {
		return err
	}
	if !mounted {
		if err := os.MkdirAll(HugeMount, 0o755); err != nil {
			return fmt.Errorf("mount hugetlbfs: %w", err)
		}
		if err := syscall.Mount("nodev", HugeMount, "hugetlbfs", 0, ""); err != nil {
			return fmt.Errorf("mount hugetlbfs on %s: %w", HugeMount, err)
		}
	}
	return nil
}

func hugeInfo() (sizeKB, free int, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.Atoi(fs[1])
		switch fs[0] {
		case "Hugepagesize:":
			sizeKB = v
		case "HugePages_Free:":
			free = v
		}
	}
	return sizeKB, free, sc.Err()
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// hugetlbfsMounts lists the mount points of hugetlbfs.
func hugetlbfsMounts() ([]string, error) {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		fs := strings.Fields(l)
		if len(fs) >= 3 && fs[2] == "hugetlbfs" {
			out = append(out, fs[1])
		}
	}
	return out, nil
}

func hugetlbfsMounted() (bool, error) {
	m, err := hugetlbfsMounts()
	return len(m) > 0, err
}

// RemoveStaleHugeFiles deletes the PREFIXmap_* files a killed process with
// the same --file-prefix left behind, unless a live primary still holds the
// prefix's config lock. It returns how many files it removed.
func RemoveStaleHugeFiles(prefix string) (int, error) {
	if prefix == "" || strings.ContainsAny(prefix, "/*?[") {
		return 0, fmt.Errorf("unusable file prefix %q", prefix)
	}
	if live, err := prefixInUse(prefix); err != nil || live {
		return 0, err
	}
	mounts, err := hugetlbfsMounts()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range mounts {
		files, _ := filepath.Glob(filepath.Join(m, prefix+"map_*"))
		for _, f := range files {
			if os.Remove(f) == nil {
				n++
			}
		}
	}
	return n, nil
}

// prefixInUse tries the write lock a running primary holds on its config.
func prefixInUse(prefix string) (bool, error) {
	path := filepath.Join("/var/run/dpdk", prefix, "config")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return false, err
	}
	return lk.Type != syscall.F_UNLCK, nil
}
