package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a child process under test: the latchkey binary or the bare Echo
// ping server (this program re-executed with -ping-server).
type server struct {
	name    string
	cmd     *exec.Cmd
	addr    string // 127.0.0.1:port
	logPath string
	log     *os.File
	done    chan error
	startup time.Duration // exec to the first 200 from the health URL
	pg      *pgStore      // the PostgreSQL database it serves, whose backends' CPU counts too; nil on SQLite
}

// freeAddr picks a free loopback port. The port is released before the child
// binds it; on a quiet loopback nothing else takes it in between.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer runs bin with env, logging stdout and stderr to logPath, and
// waits until healthPath answers 200 (polled every millisecond).
func startServer(ctx context.Context, name, bin string, args, env []string, logPath, healthPath string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "LATCHKEY_ADDR="+addr, "LOADTEST_PING_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = lf, lf
	// The child dies with this program even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s := &server{name: name, cmd: cmd, addr: addr, logPath: logPath, log: lf, done: make(chan error, 1)}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { s.done <- cmd.Wait() }()

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + addr + healthPath
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			lf.Close()
			return nil, fmt.Errorf("%s exited before it was healthy (%v); see %s", name, err, logPath)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.startup = time.Since(start)
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s not healthy after 30s; see %s", name, logPath)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM, waits up to 15 s for a clean exit, then kills.
func (s *server) stop() error {
	if s == nil {
		return nil
	}
	defer s.log.Close()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == -1 {
			return nil // ended by our signal
		}
		return err
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		err := <-s.done
		s.done <- err
		return fmt.Errorf("%s ignored SIGTERM for 15s and was killed", s.name)
	}
}

// cpuTicks is utime+stime of pid in clock ticks (USER_HZ, 100 on Linux).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may contain spaces, in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/pid/stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc/pid/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return ut + st, nil
}

const ticksPerSecond = 100

func ticksToDuration(t int64) time.Duration { return time.Duration(t) * time.Second / ticksPerSecond }

// memKiB reads VmRSS and VmHWM (peak RSS) of pid, in KiB.
func memKiB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSuffix(strings.TrimSpace(v), " kB")
		switch k {
		case "VmRSS":
			rss, _ = strconv.ParseInt(v, 10, 64)
		case "VmHWM":
			hwm, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return rss, hwm, nil
}

// sampler records the highest VmRSS of pid while it runs.
type sampler struct {
	stop chan struct{}
	done chan int64
}

func sampleRSS(pid int, every time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss, _, err := memKiB(pid); err == nil && rss > peak {
				peak = rss
			}
			select {
			case <-s.stop:
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) peak() int64 { close(s.stop); return <-s.done }

// idleRSS waits for the process to settle, then reads its RSS.
func idleRSS(pid int, settle time.Duration) int64 {
	time.Sleep(settle)
	rss, _, _ := memKiB(pid)
	return rss
}
