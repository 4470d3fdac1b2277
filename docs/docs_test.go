package docs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// outside lists names of documents kept outside this repository. No file of
// the repository may mention them: the repository carries its own docs, in
// docs/. The names are assembled so that this file does not contain them.
var outside = []string{
	"CONTRACT" + ".md",
	"SCORING" + ".md",
	".." + "/shared",
	"hybrid-scoring" + "-runbook",
}

// TestNoReferencesOutsideTheRepository fails for every line of every file
// of the repository that mentions a document kept outside it.
func TestNoReferencesOutsideTheRepository(t *testing.T) {
	r := loadRepo(t)
	for _, name := range r.files {
		data := r.text(t, name)
		if data == nil {
			continue
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, o := range outside {
				if strings.Contains(line, o) {
					t.Errorf("%s:%d mentions %q, which is not part of this repository; point to docs/ instead", name, i+1, o)
				}
			}
		}
	}
}

// TestMarkdownLinksResolve fails for every relative link of a Markdown file
// whose target is not a file or directory of the repository, or whose
// anchor is not a heading of the Markdown file it points to.
func TestMarkdownLinksResolve(t *testing.T) {
	r := loadRepo(t)
	for _, name := range r.files {
		if !strings.EqualFold(path.Ext(name), ".md") {
			continue
		}
		data := r.text(t, name)
		if data == nil {
			continue
		}
		for _, l := range markdownLinks(data) {
			if err := r.resolve(t, name, path.Dir(name), l.target); err != nil {
				t.Errorf("%s:%d: link %q: %v", name, l.line, l.target, err)
			}
		}
	}
}

// docsRef matches a mention of a document under docs/, with its anchor, in
// any file: code comments, schemas, scripts and configuration point there.
var docsRef = regexp.MustCompile(`(?:^|[^\w./-])(docs/[\w.-]+\.md(?:#[\w-]+)?)`)

// TestDocsReferencesResolve fails for every mention of docs/<file>.md[#anchor]
// (relative to the repository root) that does not resolve.
func TestDocsReferencesResolve(t *testing.T) {
	r := loadRepo(t)
	for _, name := range r.files {
		data := r.text(t, name)
		if data == nil {
			continue
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, m := range docsRef.FindAllStringSubmatch(line, -1) {
				if err := r.resolve(t, "", ".", m[1]); err != nil {
					t.Errorf("%s:%d: %q: %v", name, i+1, m[1], err)
				}
			}
		}
	}
}

func TestSlugs(t *testing.T) {
	for _, tt := range []struct{ heading, want string }{
		{"Subjects and streams", "subjects-and-streams"},
		{"The /health report", "the-health-report"},
		{"`worker health`", "worker-health"},
		{"Worked example: the built-in analyzer", "worked-example-the-built-in-analyzer"},
		{"Settings that are not configurable", "settings-that-are-not-configurable"},
		{"`NATS_URL` and *friends*", "nats_url-and-friends"},
		{"[Link](x.md) text", "link-text"},
		{"Hybrid score, agreement — confidence", "hybrid-score-agreement--confidence"},
		{"Trailing hashes ##", "trailing-hashes"},
	} {
		if got := slug(tt.heading); got != tt.want {
			t.Errorf("slug(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
	anchors := headingAnchors([]byte("# A\n\n```\n# not a heading\n```\n## A\n### B `c`\n<a id=\"custom\"></a>\n"))
	for _, want := range []string{"a", "a-1", "b-c", "custom"} {
		if !anchors[want] {
			t.Errorf("anchor %q missing from %v", want, anchors)
		}
	}
	if anchors["not-a-heading"] {
		t.Error("a line in a code block was taken for a heading")
	}
}

func TestMarkdownLinksParsing(t *testing.T) {
	doc := "See [a](a.md), ![img](img/x.png \"title\") and [b](<b c.md#x>).\n" +
		"`[not](code.md)` and [web](https://example.com) [top](#top)\n" +
		"```\n[fenced](no.md)\n```\n" +
		"[ref]: ref.md#y\n"
	var got []string
	for _, l := range markdownLinks([]byte(doc)) {
		got = append(got, fmt.Sprintf("%d:%s", l.line, l.target))
	}
	want := []string{"1:a.md", "1:img/x.png", "1:b c.md#x", "2:https://example.com", "2:#top", "6:ref.md#y"}
	if !slices.Equal(got, want) {
		t.Errorf("links = %q, want %q", got, want)
	}
}

// repo is the repository's file list, read once per test.
type repo struct {
	root    string
	files   []string        // slash-separated, relative to root, sorted
	set     map[string]bool // files
	dirs    map[string]bool // every directory holding a file
	anchors map[string]map[string]bool
}

func loadRepo(t *testing.T) *repo {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if mod, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !bytes.Contains(mod, []byte("module github.com/hybridscore/hybridscore\n")) {
		t.Fatalf("%s is not the repository root (go.mod: %v)", root, err)
	}
	files, err := gitFiles(root)
	if err != nil {
		t.Logf("git: %v; walking the tree instead", err)
		if files, err = walkFiles(root); err != nil {
			t.Fatal(err)
		}
	}
	r := &repo{root: root, set: map[string]bool{}, dirs: map[string]bool{".": true}, anchors: map[string]map[string]bool{}}
	for _, f := range files {
		// A file deleted in the working tree is still in the index.
		if fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(f))); err != nil || !fi.Mode().IsRegular() || r.set[f] {
			continue
		}
		r.files = append(r.files, f)
		r.set[f] = true
		for d := path.Dir(f); d != "."; d = path.Dir(d) {
			r.dirs[d] = true
		}
	}
	slices.Sort(r.files)
	if len(r.files) == 0 {
		t.Fatal("no files found")
	}
	return r
}

// gitFiles lists the files git tracks, plus new files it does not ignore
// (documents not yet committed are checked too).
func gitFiles(root string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		return nil, err
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return nil, err
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files, nil
}

// walkFiles lists the files under root without git: it skips .git and what
// the root .gitignore's simple patterns ("/dir/", "/file", "*.ext") exclude.
func walkFiles(root string) ([]string, error) {
	var patterns []string
	if b, err := os.ReadFile(filepath.Join(root, ".gitignore")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if p := strings.TrimSpace(sc.Text()); p != "" && !strings.HasPrefix(p, "#") {
				patterns = append(patterns, p)
			}
		}
	}
	ignored := func(rel string, dir bool) bool {
		for _, p := range patterns {
			anchored := strings.HasPrefix(p, "/")
			onlyDir := strings.HasSuffix(p, "/")
			p = strings.Trim(p, "/")
			if onlyDir && !dir {
				continue
			}
			target := path.Base(rel)
			if anchored {
				target = rel
			}
			if ok, _ := path.Match(p, target); ok {
				return true
			}
		}
		return false
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" || ignored(rel, true) {
				return filepath.SkipDir
			}
			return nil
		}
		if !ignored(rel, false) {
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

// text returns a file's contents, or nil for a binary file.
func (r *repo) text(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.root, filepath.FromSlash(name)))
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return nil
	}
	if bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0 {
		return nil
	}
	return data
}

var scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// resolve checks a link target written in file from, relative to directory
// dir (both relative to the root): external URLs are not checked; a path must
// name a file or directory of the repository, and an anchor into a Markdown
// file one of its headings. A bare "#anchor" refers to from itself.
func (r *repo) resolve(t *testing.T, from, dir, target string) error {
	t.Helper()
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return nil
	}
	p, anchor, _ := strings.Cut(target, "#")
	p, _, _ = strings.Cut(p, "?")
	if u, err := url.PathUnescape(p); err == nil {
		p = u
	}
	var full string
	switch {
	case p == "" && from == "":
		return errors.New("an anchor without a file")
	case p == "":
		full = from
	case strings.HasPrefix(p, "/"): // GitHub resolves these from the repository root
		full = path.Clean(strings.TrimPrefix(p, "/"))
	default:
		full = path.Join(dir, p)
	}
	if full == ".." || strings.HasPrefix(full, "../") {
		return errors.New("points outside the repository")
	}
	if !r.set[full] && !r.dirs[full] {
		return fmt.Errorf("%s is not a file or directory of the repository", full)
	}
	if anchor == "" || !r.set[full] || !strings.EqualFold(path.Ext(full), ".md") {
		return nil
	}
	if !r.anchorsOf(t, full)[anchor] {
		return fmt.Errorf("%s has no heading with anchor #%s", full, anchor)
	}
	return nil
}

func (r *repo) anchorsOf(t *testing.T, name string) map[string]bool {
	t.Helper()
	if a, ok := r.anchors[name]; ok {
		return a
	}
	a := headingAnchors(r.text(t, name))
	r.anchors[name] = a
	return a
}

type link struct {
	line   int
	target string
}

var (
	inlineLink = regexp.MustCompile(`\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(?:<([^>]*)>|([^\s)]+))(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)`)
	refLink    = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*(?:<([^>]*)>|(\S+))`)
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	fence      = regexp.MustCompile("^ {0,3}(```|~~~)")
)

// fences follows a document's fenced code blocks line by line.
type fences struct{ open string }

// skip reports whether line is a fence or inside a fenced block.
func (f *fences) skip(line string) bool {
	if m := fence.FindStringSubmatch(line); m != nil {
		switch {
		case f.open == "":
			f.open = m[1]
		case f.open == m[1]:
			f.open = ""
		}
		return true
	}
	return f.open != ""
}

// markdownLinks returns the targets of a Markdown document's inline links,
// images and reference definitions, outside code blocks and code spans.
// A "#anchor" target refers to the document itself and is returned as is.
func markdownLinks(doc []byte) []link {
	var links []link
	var f fences
	for i, line := range strings.Split(string(doc), "\n") {
		if f.skip(line) {
			continue
		}
		if m := refLink.FindStringSubmatch(line); m != nil {
			links = append(links, link{i + 1, m[1] + m[2]})
			continue
		}
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			links = append(links, link{i + 1, m[1] + m[2]})
		}
	}
	return links
}

var (
	heading  = regexp.MustCompile(`^ {0,3}#{1,6}\s+(.*?)\s*$`)
	htmlID   = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
	mdLink   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	closeSeq = regexp.MustCompile(`\s+#+$`)
)

// headingAnchors returns the anchors GitHub gives a document's headings
// (repeated slugs get -1, -2, …), plus explicit <a name|id="…"> anchors.
func headingAnchors(doc []byte) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	var f fences
	for _, line := range strings.Split(string(doc), "\n") {
		if f.skip(line) {
			continue
		}
		for _, m := range htmlID.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			anchors[s] = true
		}
		seen[s]++
	}
	return anchors
}

// slug is GitHub's anchor for a heading's text: the rendered text
// lower-cased, with everything but letters, digits, marks, "_", "-" and
// spaces removed, and spaces turned into hyphens.
func slug(text string) string {
	text = closeSeq.ReplaceAllString(text, "")
	text = strings.TrimRight(text, "#")
	text = mdLink.ReplaceAllString(text, "$1")
	text = strings.NewReplacer("`", "", "*", "").Replace(text)
	var b strings.Builder
	for _, c := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case c == ' ':
			b.WriteByte('-')
		case c == '-' || c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c) || unicode.Is(unicode.Mn, c):
			b.WriteRune(c)
		}
	}
	return b.String()
}
