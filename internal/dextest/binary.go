package dextest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dexPackage is the package tools/dex/go.mod pins as a tool.
const dexPackage = "github.com/dexidp/dex/cmd/dex"

// buildTimeout bounds one go build of Dex (about 3 minutes cold on two
// busy cores, seconds once the build cache has it).
const buildTimeout = 15 * time.Minute

// dexBinary returns the Dex binary to run: $LATCHKEY_DEX, or the cached
// build. It skips t (fails it under LATCHKEY_E2E_REQUIRE=1) when Dex
// cannot be built here.
func dexBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvDex); p != "" {
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			// Set on purpose, so a wrong path is a mistake, not a skip.
			t.Fatalf("dextest: %s=%s is not an executable file (%v)", EnvDex, p, err)
		}
		return p
	}
	p, err := cachedBuild()
	if err != nil {
		unavailable(t, "no Dex binary: %v", err)
	}
	return p
}

// cachedBuild builds Dex at most once per test process (sync.OnceValues:
// a failure, e.g. no module proxy, is reported to every test alike rather
// than retried by each), and at most once per machine for a given
// tools/dex/go.mod and go.sum (the cache directory is keyed by their
// digest, and a flock in it makes a second test process wait for the
// first one's build and then find the binary).
var cachedBuild = sync.OnceValues(func() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	modfile := filepath.Join(root, "tools", "dex", "go.mod")
	digest, err := modDigest(modfile)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "latchkey-dex-"+digest)
	bin := filepath.Join(dir, "dex")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("build lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("build lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if isExecutable(bin) { // another process built it while we waited
		return bin, nil
	}

	gocmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building Dex needs the go command: %w", err)
	}
	tmp := bin + ".tmp-" + strconv.Itoa(os.Getpid())
	defer os.Remove(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gocmd, "build", "-modfile="+modfile, "-o", tmp, dexPackage)
	cmd.Dir = root
	fmt.Fprintf(os.Stderr, "dextest: building Dex into %s (about 3 minutes the first time)\n", dir)
	began := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -modfile=%s %s failed (no module proxy or module cache? no C compiler?): %v\n%s",
			modfile, dexPackage, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "dextest: built Dex in %v\n", time.Since(began).Round(time.Second))
	return bin, nil
})

// modDigest is the first 16 hex digits of the SHA-256 of the wrapper
// module's go.mod and go.sum: what the build depends on.
func modDigest(modfile string) (string, error) {
	h := sha256.New()
	for _, name := range []string{modfile, modfile[:len(modfile)-len(".mod")] + ".sum"} {
		b, err := os.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("the Dex wrapper module: %w", err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// repoRoot finds the repository from this source file's path, so tests in
// any package (each runs in its own directory) build the same module.
func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the dextest source file")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "tools", "dex", "go.mod")); err != nil {
		return "", fmt.Errorf("the Dex wrapper module is missing: %w", err)
	}
	return root, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
