package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the module's root, from this package's directory.
const repoRoot = "../../.."

// The programs the quick start runs, as it writes them, and the package
// each is built from.
var quickStartPrograms = map[string]string{
	"go run ./server/cmd/bryggad":    "./server/cmd/bryggad",
	"go run ./client-sdk/cmd/brygga": "./client-sdk/cmd/brygga",
}

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	codeRE = regexp.MustCompile(`^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$`)
)

// quickStartPlaceholders finds, for each placeholder the quick start
// uses, its value in what the command before printed.
var quickStartPlaceholders = map[string]func(prev string) string{
	// The unit id in the enroll-code command make run printed.
	"UNIT_ID": func(prev string) string {
		m := regexp.MustCompile(`enroll-code --db \S+ --unit (` + uuidRE.String() + `)`).FindStringSubmatch(prev)
		if m == nil {
			return ""
		}
		return m[1]
	},
	// The code on the first line of enroll-code's output.
	"ENROL_CODE": func(prev string) string {
		first, _, _ := strings.Cut(prev, "\n")
		if !codeRE.MatchString(first) {
			return ""
		}
		return first
	},
	// The first staff id under the header of enroll's staff list.
	"STAFF_ID": func(prev string) string {
		_, list, ok := strings.Cut(prev, "STAFF ID")
		if !ok {
			return ""
		}
		return uuidRE.FindString(list)
	},
}

// quickStartPrints is what each quick-start command must print, by its
// program's arguments after --db FILE.
var quickStartPrints = map[string]*regexp.Regexp{
	"device enroll-code": regexp.MustCompile(`(?s)^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\n.*valid until`),
	"enroll":             regexp.MustCompile(`(?s)^device ` + uuidRE.String() + `\nunit +` + uuidRE.String() + ` Fältgruppen Östersund \(area 2380\)\n.*staff --set STAFF_ID\n`),
	"staff":              regexp.MustCompile(`^staff ` + uuidRE.String() + ` records on this device\n$`),
	"contact":            regexp.MustCompile(`^` + uuidRE.String() + `\n$`),
	"sync":               regexp.MustCompile(`^pushed 1, pulled \d+; 0 pending, 0 rejected\n$`),
	"status":             regexp.MustCompile(`(?m)^pending +0$`),
}

// TestQuickStart runs the commands of README.md's quick start as the file
// writes them, in a fresh directory: make run as the Makefile's run target
// does (with ADDR a free loopback port instead of 127.0.0.1:8080), and
// every other command with the placeholders the command before it printed
// put in. It checks what each prints, and that the dashboard the quick
// start ends at counts the contact.
func TestQuickStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section, commands := quickStart(t, string(readme))
	if len(commands) < 2 || commands[0] != "make run" {
		t.Fatalf("the quick start's commands are %q; want make run first", commands)
	}

	bin := t.TempDir()
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, pkg := range quickStartPrograms {
		args = append(args, pkg)
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	binary := func(prefix string) string { return filepath.Join(bin, filepath.Base(quickStartPrograms[prefix])) }

	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	defaultAddr, serve := makeRun(t, binary("go run ./server/cmd/bryggad"), addr)
	runOut := startServer(ctx, t, dir, serve, addr)

	prev := runOut
	for _, line := range commands[1:] {
		words := strings.Fields(strings.ReplaceAll(line, "http://"+defaultAddr, "http://"+addr))
		prog := ""
		for prefix := range quickStartPrograms {
			if strings.HasPrefix(line, prefix+" ") {
				prog = prefix
			}
		}
		if prog == "" {
			t.Fatalf("the quick start runs %q, which is none of the programs the test knows", line)
		}
		words = append([]string{binary(prog)}, words[len(strings.Fields(prog)):]...)
		filled := slicesClone(words)
		for i, w := range words {
			if find, ok := quickStartPlaceholders[w]; ok {
				if filled[i] = find(prev); filled[i] == "" {
					t.Fatalf("%q: the command before printed no %s:\n%s", line, w, prev)
				}
			} else if regexp.MustCompile(`^[A-Z][A-Z_]{2,}$`).MatchString(w) {
				t.Fatalf("%q: the placeholder %s is not one the test knows where to find", line, w)
			}
		}
		// Where the command before printed this one, it printed it as the
		// quick start writes it.
		if strings.Contains(prev, binary(prog)) && !strings.Contains(prev, strings.Join(words, " ")) && !strings.Contains(prev, strings.Join(filled, " ")) {
			t.Errorf("the command before printed a command other than %q:\n%s", line, prev)
		}
		cmd := exec.CommandContext(ctx, filled[0], filled[1:]...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("%s: %v\n%s%s", line, err, out, stderr)
		}
		rest := filled[1:]
		if len(rest) >= 2 && rest[0] == "--db" {
			rest = rest[2:]
		}
		for key, want := range quickStartPrints {
			if strings.HasPrefix(strings.Join(rest, " ")+" ", key+" ") && !want.Match(out) {
				t.Errorf("%s printed %q, want it to match %s", line, out, want)
			}
		}
		prev = string(out)
	}

	// The dashboard, as the quick start says to open it.
	m := regexp.MustCompile(`(http://\S+/dashboard/)\s+and\s+log\s+in\s+as\s+(\S+)\s+with`).FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the quick start does not say where the dashboard is and whom to log in as")
	}
	page := strings.Replace(m[1], defaultAddr, addr, 1)
	pw := regexp.MustCompile(`(?m)^\s+manager\s+` + regexp.QuoteMeta(m[2]) + `\s+(\S+)$`).FindStringSubmatch(runOut)
	if pw == nil {
		t.Fatalf("make run printed no password for %s:\n%s", m[2], runOut)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := hc.PostForm(page+"login", url.Values{"username": {m[2]}, "password": {pw[1]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/dashboard/" || resp.StatusCode != http.StatusOK {
		t.Fatalf("logging in to the dashboard: %s at %s\n%s", resp.Status, resp.Request.URL, body)
	}
	if !regexp.MustCompile(`id="kpi-contacts">(?:[^<]|<abbr[^>]*>[^<]*</abbr>)*<b>1</b>`).Match(body) {
		t.Errorf("the dashboard's overview does not count the one contact:\n%s", body)
	}
	// The tablet is listed with its last sync, in a zone the page names.
	resp, err = hc.Get(page + "devices")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`\((svensk tid|Swedish time)\)</th>`).Match(body) || !regexp.MustCompile(`<td[^>]*>\d{4}-\d\d-\d\d \d\d:\d\d`).Match(body) {
		t.Errorf("the dashboard's devices do not show the tablet's last sync in Swedish time, labelled:\n%s", body)
	}
}

// quickStart returns README.md's quick-start section and the commands of
// its fenced sh blocks, one a line.
func quickStart(t *testing.T, readme string) (string, []string) {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no section ## Quick start")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var commands []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && line == "```sh":
			in = true
		case in && line == "```":
			in = false
		case in && strings.TrimSpace(line) != "":
			if strings.ContainsAny(line, "'\"|<>&;$`\\#") {
				t.Fatalf("the quick start's command %q needs a shell; keep them plain", line)
			}
			commands = append(commands, strings.TrimSpace(line))
		}
	}
	return section, commands
}

// makeRun reads the Makefile's run target and returns its default ADDR
// and the command it runs, with bryggad the built binary and ADDR addr,
// as "make run ADDR=addr" would. It checks that the target makes the
// database's directory.
func makeRun(t *testing.T, bryggad, addr string) (string, []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(\w+)\s*\?=\s*(.*?)\s*$`).FindAllStringSubmatch(string(data), -1) {
		vars[m[1]] = m[2]
	}
	defaultAddr := vars["ADDR"]
	vars["ADDR"] = addr
	_, recipe, ok := strings.Cut(string(data), "\nrun:\n")
	if !ok {
		t.Fatal("the Makefile has no run target")
	}
	var lines []string
	for _, l := range strings.Split(recipe, "\n") {
		if !strings.HasPrefix(l, "\t") {
			break
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	if len(lines) != 2 || lines[0] != "@mkdir -p $(dir $(DB))" {
		t.Fatalf("the run target is %q; the test knows one that makes the database's directory, then serves", lines)
	}
	expand := regexp.MustCompile(`\$\((\w+)\)`)
	serve := expand.ReplaceAllStringFunc(lines[1], func(v string) string { return vars[v[2:len(v)-1]] })
	prefix := vars["GO"] + " run ./server/cmd/bryggad "
	if !strings.HasPrefix(serve, prefix) {
		t.Fatalf("make run runs %q, not %q", serve, prefix+"...")
	}
	return defaultAddr, append([]string{bryggad}, strings.Fields(strings.TrimPrefix(serve, prefix))...)
}

// startServer makes the directory of the database serve names, starts
// serve in dir and returns what it printed up to its listening line. The
// server is stopped when the test ends.
func startServer(ctx context.Context, t *testing.T, dir string, serve []string, addr string) string {
	t.Helper()
	for i, a := range serve {
		if a == "--db" && i+1 < len(serve) {
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(serve[i+1])), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := exec.Command(serve[0], serve[1:]...)
	cmd.Dir = dir
	cmd.Stderr = io.Discard // the server's JSON log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var printed strings.Builder
	ready, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			mu.Lock()
			fmt.Fprintln(&printed, sc.Text())
			mu.Unlock()
			if !once && strings.HasPrefix(sc.Text(), "bryggad listening on http://"+addr) {
				once = true
				close(ready)
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("make run stopped before it listened on %s", addr)
	case <-ctx.Done():
		t.Fatalf("make run did not listen on %s in time", addr)
	}
	mu.Lock()
	defer mu.Unlock()
	return printed.String()
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }
