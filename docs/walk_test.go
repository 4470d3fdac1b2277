package docs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// walked are the documents whose commands TestWalkTheDocs runs, in order:
// the README starts the worker the operations guide's commands use.
var walked = []string{"README.md", "docs/operations.md"}

// skipMarker is how a document says that one of its commands cannot run on
// the embedded default: <!-- walk-the-docs: skip "PREFIX" reason -->, for
// every command of the document that begins with PREFIX.
var skipMarker = regexp.MustCompile(`<!-- walk-the-docs: skip "([^"]+)" (.+?) -->`)

// docCommand is one command of a document's shell blocks.
type docCommand struct {
	doc  string
	line int
	text string
}

// shellCommands returns the commands of doc: the lines of its ```sh and
// ```bash blocks and, in the README, of its indented code blocks; a line
// ending in "\" goes on with the next; comment lines are left out.
func shellCommands(name, doc string, indented bool) []docCommand {
	var cmds []docCommand
	lines := strings.Split(doc, "\n")
	fence := regexp.MustCompile("^\\s*(```|~~~)\\s*(\\w*)")
	inFence, shell := false, false
	prevBlank := true
	var pending strings.Builder
	start := 0
	add := func(i int, l string) {
		l = strings.TrimSpace(l)
		if pending.Len() == 0 {
			if l == "" || strings.HasPrefix(l, "#") {
				return
			}
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(l, "\\"); ok {
			pending.WriteString(strings.TrimSpace(cont) + " ")
			return
		}
		pending.WriteString(l)
		cmds = append(cmds, docCommand{name, start, pending.String()})
		pending.Reset()
	}
	inIndented := false
	for i, l := range lines {
		if m := fence.FindStringSubmatch(l); m != nil {
			if inFence {
				inFence, shell = false, false
			} else {
				inFence, shell = true, m[2] == "sh" || m[2] == "bash"
			}
			prevBlank = false
			continue
		}
		switch {
		case inFence:
			if shell {
				add(i, l)
			}
		case indented && strings.HasPrefix(l, "    ") && (prevBlank || inIndented):
			inIndented = true
			add(i, l)
		default:
			inIndented = inIndented && strings.TrimSpace(l) == ""
		}
		prevBlank = strings.TrimSpace(l) == ""
	}
	return cmds
}

// walkCheck is what a command must show, beyond exiting 0, to do what its
// document says; keyed by the command's beginning.
type walkCheck func(w *walker, out string) error

func contains(wants ...string) walkCheck {
	return func(_ *walker, out string) error {
		for _, want := range wants {
			if !strings.Contains(out, want) {
				return fmt.Errorf("the output lacks %q", want)
			}
		}
		return nil
	}
}

func matches(res ...string) walkCheck {
	return func(_ *walker, out string) error {
		for _, re := range res {
			if !regexp.MustCompile(re).MatchString(out) {
				return fmt.Errorf("the output does not match %s", re)
			}
		}
		return nil
	}
}

func files(names ...string) walkCheck {
	return func(w *walker, _ string) error {
		for _, n := range names {
			if fi, err := os.Stat(filepath.Join(w.dir, n)); err != nil || fi.Size() == 0 {
				return fmt.Errorf("%s not written: %v", n, err)
			}
		}
		return nil
	}
}

func all(checks ...walkCheck) walkCheck {
	return func(w *walker, out string) error {
		for _, c := range checks {
			if err := c(w, out); err != nil {
				return err
			}
		}
		return nil
	}
}

var walkChecks = []struct {
	prefix string
	check  walkCheck
}{
	{"make run", contains("demo-001", "scored", "rejected", "expired", "results")},
	{"./bin/publisher submit", checkSubmit},
	{"./bin/publisher batch jobs.jsonl", checkBatch},
	{"./bin/worker health", contains("=== System Health Report ===", "ALL SYSTEMS OPERATIONAL")},
	{"./bin/publisher dlq list --ids", contains("sample-007", "missing_field")},
	{"./bin/publisher dlq list", contains("missing_field")},
	{"publisher dlq list", contains("sample-007", "missing_field")},
	{"./bin/publisher smoke", matches(`(?m)^\s*health\s+PASS`, `(?m)^\s*metrics\s+PASS`, `(?m)^\s*scored\s+PASS`, `smoke OK`)},
	{"./bin/publisher evaluate", all(files("report.json", "roc.png"), contains("ROC AUC", "95 %"))},
	{"./bin/publisher cache report", contains("hit rate")},
	{"./bin/publisher cache export -o warm.json", all(files("warm.json"), contains("exported"))},
	{"./bin/publisher cache warm warm.json", matches(`warmed: [1-9]\d* texts cached`)},
	{"./bin/publisher backup --out backup/ && ./bin/publisher restore --from backup/ --verify-only", contains("backup written to", "checksums match")},
	{"./bin/publisher backup", contains("backup written to")},
	{"./bin/publisher restore --from \"$backup\" --verify-only", contains("SCORING_RESULTS: ", "checksums match")},
	{"curl -s localhost:8053/health", contains(`"status": "healthy"`)},
	{"curl -s -H \"Authorization: Bearer $ADMIN_TOKEN\" localhost:8053/admin/cache ", contains(`"hit_rate"`)},
	{"curl -s -X POST -H \"Authorization: Bearer $ADMIN_TOKEN\" -d", contains(`"cached"`)},
	{"curl -s -X POST -H \"Authorization: Bearer $ADMIN_TOKEN\" localhost:8053/admin/circuit-breaker/reset", contains("no circuit breaker")},
}

// checkSubmit: the result printed has the schema's fields in the schema's
// order, and is scored.
func checkSubmit(w *walker, out string) error {
	schema, err := os.ReadFile(filepath.Join(w.root, "schemas", "result.schema.json"))
	if err != nil {
		return err
	}
	order := jsonKeys(schema, "properties")
	got := jsonKeys([]byte(out), "")
	if len(got) == 0 {
		return errors.New("no JSON object printed")
	}
	last := -1
	for _, k := range got {
		i := slices.Index(order, k)
		if i < 0 {
			return fmt.Errorf("field %q is not in the schema", k)
		}
		if i < last {
			return fmt.Errorf("fields %q are not in the schema's order %q", got, order)
		}
		last = i
	}
	if !strings.Contains(out, `"status": "scored"`) {
		return errors.New("not scored")
	}
	return nil
}

// checkBatch: the results file holds a result per sample job, and the same
// command again publishes nothing (every job answered or dead-lettered).
func checkBatch(w *walker, out string) error {
	b, err := os.ReadFile(filepath.Join(w.dir, "results.jsonl"))
	if err != nil {
		return err
	}
	if n := bytes.Count(b, []byte("\n")); n != 8 {
		return fmt.Errorf("results.jsonl has %d results, want the 8 jobs of jobs.jsonl", n)
	}
	again, err := w.run(w.current)
	if err != nil {
		return fmt.Errorf("the rerun: %v\n%s", err, again)
	}
	if !regexp.MustCompile(`(?m)^published\s+0\b`).MatchString(again) || !regexp.MustCompile(`(?m)^skipped \(already answered\)\s+8\b`).MatchString(again) {
		return fmt.Errorf("the rerun published again:\n%s", again)
	}
	return nil
}

// jsonKeys returns the keys of the top-level object of data, or of the
// object under key field, in document order.
func jsonKeys(data []byte, field string) []string {
	i := bytes.IndexByte(data, '{')
	if i < 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data[i:]))
	if field != "" {
		var top map[string]json.RawMessage
		if dec.Decode(&top) != nil {
			return nil
		}
		dec = json.NewDecoder(bytes.NewReader(top[field]))
	}
	var keys []string
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}

// walker runs a document's commands in a scratch copy of the repository.
type walker struct {
	t         *testing.T
	root, dir string
	env       map[string]string
	addrs     *strings.Replacer
	current   string
	worker    *exec.Cmd
	workerOut *bytes.Buffer
	workerEnd chan error
	httpAddr  string
}

func (w *walker) environ(without ...string) []string {
	var env []string
	for k, v := range w.env {
		if !slices.Contains(without, k) {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// run runs one command with bash in the scratch directory.
func (w *walker) run(text string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", w.addrs.Replace(text))
	cmd.Dir, cmd.Env = w.dir, w.environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startWorker starts the worker command in the background, on the scratch
// directory's store and free ports, and waits until it is ready.
func (w *walker) startWorker(text string) error {
	cmd := exec.Command("bash", "-c", "exec "+text)
	cmd.Dir, cmd.Env = w.dir, w.environ("NATS_URL")
	w.workerOut = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = w.workerOut, w.workerOut
	if err := cmd.Start(); err != nil {
		return err
	}
	w.worker, w.workerEnd = cmd, make(chan error, 1)
	go func() { w.workerEnd <- cmd.Wait() }()
	w.t.Cleanup(func() { w.stopWorker() })
	var lastErr error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + w.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz %s", resp.Status)
		}
		lastErr = err
		select {
		case err := <-w.workerEnd:
			return fmt.Errorf("the worker exited: %v\n%s", err, w.workerOut)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the worker is not ready: %v\n%s", lastErr, w.workerOut)
}

// stopWorker stops the worker as Ctrl-C does and returns its log.
func (w *walker) stopWorker() (string, error) {
	if w.worker == nil {
		return "", nil
	}
	cmd := w.worker
	w.worker = nil
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-w.workerEnd:
		return w.workerOut.String(), err
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
		return w.workerOut.String(), errors.New("the worker did not stop on SIGINT")
	}
}

// repoTopLevel returns the top-level names under which the repository
// (git's index, else the tree without what .gitignore excludes) has files.
func repoTopLevel(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached").Output()
	if err == nil {
		files = strings.Split(string(out), "\x00")
	} else if files, err = walkFiles(root); err != nil {
		t.Fatal(err)
	}
	var top []string
	for _, f := range files {
		if n, _, _ := strings.Cut(f, "/"); n != "" && n != "bin" && !slices.Contains(top, n) {
			top = append(top, n)
		}
	}
	return top
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var trailingComment = regexp.MustCompile(`\s+# .*$`)

// assignment is a line that only sets a shell variable (export X=… or
// X=…): its value is kept for the commands after it.
var assignment = regexp.MustCompile(`^(?:export\s+)?([A-Za-z_]\w*)=((?:[^\s$]|\$\([^)]*\))*)(?:\s+#.*)?$`)

// TestWalkTheDocs runs, as written, every command of the shell blocks of
// README.md and docs/operations.md, in order, against freshly built
// binaries, in a scratch directory that links every file of the repository
// (so the sample inputs are there, and what the commands write stays out of
// the repository). The README's "./bin/worker" is started in the background
// and runs the others, on free ports: the default addresses in the commands
// (127.0.0.1:8053, localhost:8053, worker:8053, nats://127.0.0.1:4222,
// nats://nats:4222) are mapped to them, and NATS_URL and
// HYBRIDSCORE_WORKER_URL give them to commands that name none. Each command
// must exit 0 and, where walkChecks says so, show what its text promises. A
// command a document marks with a walk-the-docs skip comment is listed with
// its reason; a marker that matches no command fails the test.
func TestWalkTheDocs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the walk builds both programs and runs about thirty commands")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Only what the repository holds is linked: a results file or backup
	// left in a working copy by hand is neither input nor overwritten.
	for _, n := range repoTopLevel(t, root) {
		if err := os.Symlink(filepath.Join(root, n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	// The binaries, built as make builds them, in the scratch directory:
	// the README's "make run" then finds them up to date.
	build := exec.Command("make", "build")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	natsURL := "nats://" + natsAddr
	w := &walker{t: t, root: root, dir: dir, httpAddr: httpAddr, env: map[string]string{}}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		// The walk's environment is a newcomer's: none of the programs'
		// settings, whatever the machine running the test has set.
		if !strings.HasPrefix(k, "NATS_") && !strings.HasPrefix(k, "OTEL_") && !strings.HasPrefix(k, "HYBRIDSCORE_") && !strings.HasPrefix(k, "REDIS_") && k != "ADMIN_TOKEN" && k != "LANGEXTRACT_URL" {
			w.env[k] = v
		}
	}
	w.env["PATH"] = filepath.Join(dir, "bin") + string(os.PathListSeparator) + os.Getenv("PATH")
	w.env["XDG_STATE_HOME"] = filepath.Join(dir, "state")
	w.env["NATS_LISTEN"], w.env["HTTP_ADDR"] = natsAddr, httpAddr
	w.env["NATS_URL"], w.env["HYBRIDSCORE_WORKER_URL"] = natsURL, "http://"+httpAddr
	w.addrs = strings.NewReplacer("nats://127.0.0.1:4222", natsURL, "nats://nats:4222", natsURL,
		"127.0.0.1:8053", httpAddr, "localhost:8053", httpAddr, "worker:8053", httpAddr)

	type outcome struct {
		cmd    docCommand
		result string
	}
	var report []outcome
	ran := map[string]bool{}
	for _, name := range walked {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		markers := skipMarker.FindAllStringSubmatch(doc, -1)
		used := make([]bool, len(markers))
		for _, c := range shellCommands(name, doc, name == "README.md") {
			w.current = c.text
			where := fmt.Sprintf("%s:%d", c.doc, c.line)
			if i := slices.IndexFunc(markers, func(m []string) bool { return strings.HasPrefix(c.text, m[1]) }); i >= 0 {
				used[i] = true
				report = append(report, outcome{c, "skipped: " + markers[i][2]})
				continue
			}
			if m := assignment.FindStringSubmatch(c.text); m != nil {
				out, err := exec.Command("bash", "-c", m[1]+"="+m[2]+`; printf %s "$`+m[1]+`"`).Output()
				if err != nil {
					t.Errorf("%s: %s: %v", where, c.text, err)
					continue
				}
				w.env[m[1]] = string(out)
				report = append(report, outcome{c, "set " + m[1] + "=" + string(out)})
				continue
			}
			if f := strings.Fields(c.text); f[0] == "./bin/worker" && (len(f) == 1 || strings.HasPrefix(f[1], "#")) {
				if err := w.startWorker(c.text); err != nil {
					t.Fatalf("%s: %s: %v", where, c.text, err)
				}
				report = append(report, outcome{c, "started; ready on " + httpAddr})
				continue
			}
			// The same command in both documents (a comment apart) runs once.
			key := trailingComment.ReplaceAllString(c.text, "")
			if ran[key] {
				report = append(report, outcome{c, "ok (the same command ran above)"})
				continue
			}
			ran[key] = true
			start := time.Now()
			out, err := w.run(c.text)
			if err == nil {
				for _, wc := range walkChecks {
					if strings.HasPrefix(c.text, wc.prefix) {
						err = wc.check(w, out)
						break
					}
				}
			}
			took := time.Since(start).Round(10 * time.Millisecond)
			if err != nil {
				t.Errorf("%s: %s\n  failed: %v\n%s", where, c.text, err, out)
				report = append(report, outcome{c, "FAILED: " + err.Error()})
				continue
			}
			report = append(report, outcome{c, "ok (" + took.String() + ")"})
		}
		for i, m := range markers {
			if !used[i] {
				t.Errorf("%s: the skip marker %q matches no command", name, m[1])
			}
		}
	}
	if log, err := w.stopWorker(); err != nil || !strings.Contains(log, `"stopped"`) || strings.Contains(log, "NATS disconnected") {
		t.Errorf("the worker's stop: %v (a clean stop logs \"stopped\" and no disconnection)\n%s", err, log)
	} else {
		report = append(report, outcome{docCommand{"(walk)", 0, "Ctrl-C to ./bin/worker"}, "stopped cleanly, no warning"})
	}
	var b strings.Builder
	for _, o := range report {
		fmt.Fprintf(&b, "%-24s %s\n%26s→ %s\n", o.cmd.doc+":"+strconv.Itoa(o.cmd.line), o.cmd.text, "", o.result)
	}
	t.Logf("the walk:\n%s", b.String())
}
