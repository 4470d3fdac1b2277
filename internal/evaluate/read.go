package evaluate

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hybridscore/hybridscore/internal/combiner"
)

// row is a pair as written in a file; the job's own field names are
// accepted too, so a file of jobs with a label added can be evaluated.
type row struct {
	Task            string   `json:"task"`
	Pattern         string   `json:"pattern"`
	JobTask         string   `json:"task_description"`
	JobPattern      string   `json:"historical_pattern_text"`
	Vector          *float64 `json:"vector_similarity"`
	Label           *float64 `json:"label"`
	Relevance       *float64 `json:"relevance"`
	Complexity      string   `json:"complexity"`
	FeatureLabel    string   `json:"feature_label"`
	Characteristics *struct {
		Complexity   string `json:"complexity"`
		FeatureLabel string `json:"feature_label"`
		TaskType     string `json:"task_type"`
	} `json:"task_characteristics"`
}

// ErrBadRow is wrapped by every error about one row of a file.
var ErrBadRow = errors.New("evaluate: bad row")

// Read reads labelled pairs from JSONL (one object per line) or CSV (a
// header naming task, pattern, vector_similarity, label and optionally
// complexity, feature_label); which one is told by the first byte.
// Fields: task (or task_description), pattern (or historical_pattern_text),
// vector_similarity in [0, 1], label (or relevance) >= 0.
func Read(r io.Reader) ([]Pair, error) {
	br := bufio.NewReader(r)
	first, err := br.Peek(1)
	for err == nil && (first[0] == ' ' || first[0] == '\n' || first[0] == '\r' || first[0] == '\t') {
		_, _ = br.ReadByte()
		first, err = br.Peek(1)
	}
	if err == io.EOF {
		return nil, ErrNoPairs
	}
	if err != nil {
		return nil, err
	}
	if first[0] == '{' {
		return readJSONL(br)
	}
	return readCSV(br)
}

func readJSONL(r *bufio.Reader) ([]Pair, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var pairs []Pair
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var w row
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&w); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadRow, line, err)
		}
		p, err := w.pair(line)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, p)
	}
	return pairs, sc.Err()
}

func readCSV(r io.Reader) ([]Pair, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: CSV header: %v", ErrBadRow, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	get := func(rec []string, names ...string) (string, bool) {
		for _, n := range names {
			if i, ok := col[n]; ok && i < len(rec) {
				return rec[i], true
			}
		}
		return "", false
	}
	var pairs []Pair
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return pairs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadRow, line, err)
		}
		var w row
		w.Task, _ = get(rec, "task", "task_description")
		w.Pattern, _ = get(rec, "pattern", "historical_pattern_text")
		w.Complexity, _ = get(rec, "complexity")
		w.FeatureLabel, _ = get(rec, "feature_label")
		for _, f := range []struct {
			dst   **float64
			names []string
		}{{&w.Vector, []string{"vector_similarity"}}, {&w.Label, []string{"label", "relevance"}}} {
			if s, ok := get(rec, f.names...); ok && strings.TrimSpace(s) != "" {
				v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if err != nil {
					return nil, fmt.Errorf("%w: line %d: %s %q is not a number", ErrBadRow, line, f.names[0], s)
				}
				*f.dst = &v
			}
		}
		p, err := w.pair(line)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, p)
	}
}

func (w *row) pair(line int) (Pair, error) {
	p := Pair{Task: w.Task, Pattern: w.Pattern, Line: line}
	if p.Task == "" {
		p.Task = w.JobTask
	}
	if p.Pattern == "" {
		p.Pattern = w.JobPattern
	}
	if p.Task == "" || p.Pattern == "" {
		return p, fmt.Errorf("%w: line %d: task and pattern are required", ErrBadRow, line)
	}
	if w.Vector == nil || !(*w.Vector >= 0 && *w.Vector <= 1) {
		return p, fmt.Errorf("%w: line %d: vector_similarity must be a number in [0, 1]", ErrBadRow, line)
	}
	p.Vector = *w.Vector
	label := w.Label
	if label == nil {
		label = w.Relevance
	}
	if label == nil || !(*label >= 0) || *label > 1e9 {
		return p, fmt.Errorf("%w: line %d: label must be a number >= 0 (0/1 or a grade)", ErrBadRow, line)
	}
	p.Label = *label
	c := combiner.Characteristics{Complexity: w.Complexity, FeatureLabel: w.FeatureLabel}
	if w.Characteristics != nil {
		c = combiner.Characteristics{Complexity: w.Characteristics.Complexity, FeatureLabel: w.Characteristics.FeatureLabel, TaskType: w.Characteristics.TaskType}
	}
	if c != (combiner.Characteristics{}) {
		p.Characteristics = &c
	}
	return p, nil
}
