package evaluate

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"slices"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WriteTable writes one line per configuration, best first by ROC AUC,
// with the 95 % interval of each ROC AUC and of its difference from the
// default's; then the best configuration and the recommendation: a change
// only when its paired interval lies above zero.
func WriteTable(w io.Writer, r *Report) error {
	ks := r.ks()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "configuration\tROC AUC\t95 % interval\tvs default\t95 % interval\tAP\t"
	for _, k := range ks {
		head += fmt.Sprintf("P@%d\t", k)
	}
	head += "threshold\taccuracy\tF1\tmean rel\tmean irrel\tdegraded\t"
	fmt.Fprintln(tw, head)
	for _, i := range r.ranked() {
		res := r.Results[i]
		m := res.Metrics
		ci, diff, dci := "-", "-", "-"
		if iv := res.ROCAUCInterval; iv != nil {
			ci = fmt.Sprintf("[%.3f, %.3f]", iv.Low, iv.High)
		}
		if c := res.VsDefault; c != nil && res.Config != r.Default {
			diff, dci = fmt.Sprintf("%+.4f", c.Diff), fmt.Sprintf("[%+.4f, %+.4f]", c.Interval.Low, c.Interval.High)
		}
		line := fmt.Sprintf("%s\t%.4f\t%s\t%s\t%s\t%.3f\t", res.Config, m.ROCAUC, ci, diff, dci, m.AveragePrecision)
		for _, k := range ks {
			line += fmt.Sprintf("%.3f\t", m.PrecisionAtK[k])
		}
		line += fmt.Sprintf("%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t", m.Threshold, m.Accuracy, m.F1, m.MeanRelevant, m.MeanIrrelevant, m.Degraded)
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d pairs (%d relevant, label >= %g) over %d tasks; analyses: %s\n", r.Pairs, r.Relevant, r.RelevantAt, r.Tasks, r.Source)
	if r.Resamples > 0 {
		fmt.Fprintf(w, "95 %% intervals: %d bootstrap resamples of the %d tasks (a task's pairs drawn together); \"vs default\" is paired: both configurations on the same resamples\n", r.Resamples, r.Tasks)
	}
	b := r.BestResult()
	if b == nil {
		return nil
	}
	fmt.Fprintf(w, "best: %s (ROC AUC %.4f)", b.Config, b.Metrics.ROCAUC)
	if c := b.VsDefault; c != nil && b.Config != r.Default {
		fmt.Fprintf(w, ", %+.4f against the default, 95 %% interval [%+.4f, %+.4f]", c.Diff, c.Interval.Low, c.Interval.High)
	}
	fmt.Fprintln(w)
	switch rec := r.result(r.Recommended); {
	case r.Default == "":
		// No default in the grid: nothing to compare with.
	case rec == nil:
		fmt.Fprintf(w, "recommendation: keep the default (%s): no configuration's ROC AUC is above the default's with 95 %% confidence on this set\n", r.Default)
	default:
		fmt.Fprintf(w, "recommendation: %s, whose ROC AUC is above the default's by %+.4f (95 %% interval [%+.4f, %+.4f]); to run it, set:\n",
			rec.Config, rec.VsDefault.Diff, rec.VsDefault.Interval.Low, rec.VsDefault.Interval.High)
		for _, e := range rec.Env {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	return nil
}

// result returns the result named config, or nil.
func (r *Report) result(config string) *Result {
	if config == "" {
		return nil
	}
	for i := range r.Results {
		if r.Results[i].Config == config {
			return &r.Results[i]
		}
	}
	return nil
}

// ranked returns result indexes by ROC AUC, highest first (stable).
func (r *Report) ranked() []int {
	idx := make([]int, len(r.Results))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		x, y := r.Results[a].Metrics.ROCAUC, r.Results[b].Metrics.ROCAUC
		switch {
		case x > y:
			return -1
		case x < y:
			return 1
		}
		return 0
	})
	return idx
}

func (r *Report) ks() []int {
	if len(r.Results) == 0 {
		return nil
	}
	var ks []int
	for k := range r.Results[0].Metrics.PrecisionAtK {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// PlotROC draws the ROC curves, with the chance diagonal, as a PNG (or SVG
// or PDF, by the name's extension) at path. Fourteen configurations whose
// curves lie close together, each in a colour of its own, would be a
// tangle: the default (black, dashed) and the best (orange; the
// recommended one when there is one) are drawn thick and named in the
// legend with their ROC AUC and interval; the others are thin light grey
// lines behind them, one legend entry for all.
func PlotROC(r *Report, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("ROC curves, %d pairs (%d relevant), %d configurations", r.Pairs, r.Relevant, len(r.Results))
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.X.Label.Text = "false-positive rate"
	p.Y.Label.Text = "true-positive rate"
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(13)
		a.Tick.Label.Font.Size = vg.Points(11)
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	var ticks []plot.Tick
	for i := range 11 {
		t := plot.Tick{Value: float64(i) / 10}
		if i%2 == 0 {
			t.Label = fmt.Sprintf("%.1f", t.Value)
		}
		ticks = append(ticks, t)
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.ConstantTicks(ticks), plot.ConstantTicks(ticks)
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(8), vg.Points(8)
	p.Legend.TextStyle.Font.Size = vg.Points(12)
	p.Legend.ThumbnailWidth = vg.Points(30)
	chance, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return err
	}
	chance.Color = color.Gray{Y: 120}
	chance.Dashes = []vg.Length{vg.Points(2), vg.Points(3)}
	p.Add(chance)
	highlight := cmp.Or(r.Recommended, r.Best)
	line := func(res *Result) (*plotter.Line, error) {
		xy := make(plotter.XYs, len(res.ROC))
		for j, pt := range res.ROC {
			xy[j].X, xy[j].Y = pt.FPR, pt.TPR
		}
		return plotter.NewLine(xy)
	}
	label := func(role string, res *Result) string {
		s := fmt.Sprintf("%s: %s, AUC %.3f", role, res.Config, res.Metrics.ROCAUC)
		if iv := res.ROCAUCInterval; iv != nil {
			s += fmt.Sprintf(" [%.3f, %.3f]", iv.Low, iv.High)
		}
		return s
	}
	var muted *plotter.Line
	others, lo, hi := 0, 1.0, 0.0
	for i := range r.Results {
		res := &r.Results[i]
		if res.Config == r.Default || res.Config == highlight {
			continue
		}
		l, err := line(res)
		if err != nil {
			return err
		}
		l.Color, l.Width = color.Gray{Y: 190}, vg.Points(1)
		p.Add(l)
		muted = l
		others, lo, hi = others+1, min(lo, res.Metrics.ROCAUC), max(hi, res.Metrics.ROCAUC)
	}
	// The emphasised curves go on top of the others, the default last.
	var best, def *plotter.Line
	b, d := r.result(highlight), r.result(r.Default)
	if b != nil && b != d {
		if best, err = line(b); err != nil {
			return err
		}
		best.Color, best.Width = color.RGBA{213, 94, 0, 255}, vg.Points(3)
		p.Add(best)
	}
	if d != nil {
		if def, err = line(d); err != nil {
			return err
		}
		def.Color, def.Width = color.Black, vg.Points(2)
		def.Dashes = []vg.Length{vg.Points(7), vg.Points(3)}
		p.Add(def)
		p.Legend.Add(label("default", d), def)
	}
	if best != nil {
		role := "best"
		switch {
		case highlight == r.Recommended:
			role = "recommended"
		case r.Default != "":
			role = "best, not above the default at 95 %"
		}
		p.Legend.Add(label(role, b), best)
	}
	if muted != nil {
		p.Legend.Add(fmt.Sprintf("%d other configurations, AUC %.3f to %.3f", others, lo, hi), muted)
	}
	p.Legend.Add("chance", chance)
	return p.Save(9*vg.Inch, 7.5*vg.Inch, path)
}
