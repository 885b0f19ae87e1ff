// Package harness is the end-to-end test harness of adaptfs: it starts the
// pinned S3-compatible test server (versitygw), builds and mounts adaptfs,
// generates deterministic data sets and verifies what reached the bucket
// independently of adaptfs (plain S3 client, SHA-256 of every object).
//
// Everything here returns errors so that it can be used by tests and by the
// demo command alike; the helpers that take a testing.TB live in
// harness_tb.go.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// VersitygwEnv names the environment variable that overrides where the
// versitygw binary is found.
const VersitygwEnv = "ADAPTFS_VERSITYGW"

// ModuleRoot walks up from the working directory to the directory holding
// go.mod.
func ModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("module root: no go.mod in %s or any parent", wd)
		}
		dir = parent
	}
}

// FindVersitygw returns the path of the versitygw binary: $ADAPTFS_VERSITYGW,
// else <module root>/bin/versitygw, else versitygw from PATH.
func FindVersitygw() (string, error) {
	if p := os.Getenv(VersitygwEnv); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("$%s: %w", VersitygwEnv, err)
		}
		return p, nil
	}
	if root, err := ModuleRoot(); err == nil {
		p := filepath.Join(root, "bin", "versitygw")
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", errors.New("versitygw not found ($" + VersitygwEnv + ", <module root>/bin/versitygw, PATH): run `make bin/versitygw`")
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// BuildAdaptfs runs `go build -o outDir/adaptfs ./cmd/adaptfs` in the module
// root and returns the path of the binary.
func BuildAdaptfs(ctx context.Context, outDir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("build adaptfs: %w", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
		if checkExecutable(goBin) != nil {
			return "", errors.New("build adaptfs: go not found in PATH or /usr/local/go/bin")
		}
	}
	outDir, err = filepath.Abs(outDir)
	if err != nil {
		return "", fmt.Errorf("build adaptfs: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("build adaptfs: %w", err)
	}
	out := filepath.Join(outDir, "adaptfs")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./cmd/adaptfs")
	cmd.Dir = root
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build adaptfs: go build ./cmd/adaptfs: %w\n%s", err, strings.TrimSpace(buf.String()))
	}
	return out, nil
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if n <= 0 || s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// fileTail returns the last n lines of the file at path, reading at most its
// last 256 KiB; "" if it cannot be read.
func fileTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxRead = 256 << 10
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-maxRead, 0)
	buf := make([]byte, st.Size()-off)
	k, _ := f.ReadAt(buf, off)
	return tailLines(string(buf[:k]), n)
}
