package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hybridscore/hybridscore/internal/config"
)

// section returns the lines of doc's section under the heading text (any
// level), up to the next heading of the same or a higher level.
func section(t *testing.T, doc, title string) []string {
	t.Helper()
	var out []string
	level := 0
	var f fences
	for _, line := range strings.Split(doc, "\n") {
		if f.skip(line) {
			if level > 0 {
				out = append(out, line)
			}
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			trimmed := strings.TrimLeft(line, " ")
			n := len(trimmed) - len(strings.TrimLeft(trimmed, "#"))
			if level > 0 && n <= level {
				break
			}
			if m[1] == title {
				level = n
				continue
			}
		}
		if level > 0 {
			out = append(out, line)
		}
	}
	if level == 0 {
		t.Fatalf("no section %q", title)
	}
	return out
}

// tableRows returns the cells of the first Markdown table among lines,
// header and separator left out.
func tableRows(lines []string) [][]string {
	var rows [][]string
	in := false
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") {
			if in {
				break
			}
			continue
		}
		in = true
		cells := strings.Split(strings.Trim(l, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	if len(rows) < 2 {
		return nil
	}
	return rows[2:]
}

var codeSpans = regexp.MustCompile("`([^`]+)`")

// spans returns the code spans of a table cell.
func spans(cell string) []string {
	var out []string
	for _, m := range codeSpans.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// setting is one configuration variable as internal/config declares it.
type setting struct {
	env, flag, def string
	hasDefault     bool
}

// configSettings walks config.Config (embedded structs included) for the
// variables kong reads.
func configSettings(t reflect.Type) []setting {
	var out []setting
	for i := range t.NumField() {
		f := t.Field(i)
		if _, ok := f.Tag.Lookup("embed"); ok || (f.Anonymous && f.Type.Kind() == reflect.Struct) {
			out = append(out, configSettings(f.Type)...)
			continue
		}
		env := f.Tag.Get("env")
		if env == "" {
			continue
		}
		flag := "--" + f.Tag.Get("name")
		if _, ok := f.Tag.Lookup("negatable"); ok {
			flag = "--[no-]" + f.Tag.Get("name")
		}
		def, ok := f.Tag.Lookup("default")
		out = append(out, setting{env: env, flag: flag, def: def, hasDefault: ok})
	}
	return out
}

// TestContractConfigurationTableMatchesTheCode: every variable
// internal/config reads is a row of docs/contract.md's configuration table,
// with its flag and (for a row of one variable) its default; and every
// variable of the table is read by internal/config, except rows whose flag
// column says "none" (read by a library, e.g. the OpenTelemetry SDK).
func TestContractConfigurationTableMatchesTheCode(t *testing.T) {
	doc, err := os.ReadFile("contract.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := tableRows(section(t, string(doc), "Configuration"))
	if len(rows) < 10 {
		t.Fatalf("configuration table: %d rows", len(rows))
	}
	type row struct {
		vars, flags []string
		def         string
		external    bool
	}
	documented := map[string]row{}
	for _, cells := range rows {
		if len(cells) != 4 {
			t.Errorf("row %q: %d cells, want 4", cells, len(cells))
			continue
		}
		r := row{vars: spans(cells[0]), flags: spans(cells[1]), def: strings.ReplaceAll(cells[2], "`", ""),
			external: strings.HasPrefix(cells[1], "none")}
		for _, v := range r.vars {
			if _, dup := documented[v]; dup {
				t.Errorf("%s: documented twice", v)
			}
			documented[v] = r
		}
	}
	read := map[string]bool{}
	for _, s := range configSettings(reflect.TypeFor[config.Config]()) {
		read[s.env] = true
		r, ok := documented[s.env]
		if !ok {
			t.Errorf("%s (%s) is read by internal/config but not in docs/contract.md#configuration", s.env, s.flag)
			continue
		}
		if !slices.Contains(r.flags, s.flag) {
			t.Errorf("%s: the table gives flag(s) %q, the code %s", s.env, r.flags, s.flag)
		}
		if len(r.vars) == 1 && s.hasDefault && s.def != "" && !strings.Contains(r.def, s.def) {
			t.Errorf("%s: the table's default %q does not say the code's %q", s.env, r.def, s.def)
		}
	}
	for v, r := range documented {
		if !read[v] && !r.external {
			t.Errorf("%s is in docs/contract.md#configuration but internal/config does not read it", v)
		}
	}
}

// serverRoutes returns the patterns internal/server registers on its mux
// (HandleFunc and Handle calls with a literal pattern).
func serverRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "internal", "server", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if p, err := strconv.Unquote(lit.Value); err == nil {
					routes = append(routes, p)
				}
			} else {
				t.Errorf("%s: a route registered with a pattern that is not a literal; this test cannot read it", fset.Position(call.Pos()))
			}
			return true
		})
	}
	slices.Sort(routes)
	return routes
}

// TestContractEndpointTableMatchesTheCode: the routes internal/server serves
// and the rows of docs/contract.md's HTTP endpoint table are the same.
func TestContractEndpointTableMatchesTheCode(t *testing.T) {
	doc, err := os.ReadFile("contract.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, cells := range tableRows(section(t, string(doc), "HTTP endpoints")) {
		if s := spans(cells[0]); len(s) == 1 {
			documented = append(documented, s[0])
		} else {
			t.Errorf("endpoint row %q: want one `METHOD /path`", cells[0])
		}
	}
	slices.Sort(documented)
	served := serverRoutes(t)
	if len(served) < 5 {
		t.Fatalf("found only %q in internal/server", served)
	}
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("internal/server serves %q; docs/contract.md#http-endpoints does not list it", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("docs/contract.md#http-endpoints lists %q; internal/server does not serve it", r)
		}
	}
}
