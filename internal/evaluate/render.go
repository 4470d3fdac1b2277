package evaluate

import (
	"fmt"
	"image/color"
	"io"
	"slices"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WriteTable writes one line per configuration, best first by ROC AUC, then
// the best configuration and the environment that selects it.
func WriteTable(w io.Writer, r *Report) error {
	ks := r.ks()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "configuration\tROC AUC\tAP\t"
	for _, k := range ks {
		head += fmt.Sprintf("P@%d\t", k)
	}
	head += "threshold\taccuracy\tF1\tmean rel\tmean irrel\tdegraded\t"
	fmt.Fprintln(tw, head)
	for _, i := range r.ranked() {
		res := r.Results[i]
		m := res.Metrics
		line := fmt.Sprintf("%s\t%.3f\t%.3f\t", res.Config, m.ROCAUC, m.AveragePrecision)
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
	if b := r.BestResult(); b != nil {
		fmt.Fprintf(w, "best: %s (ROC AUC %.3f); to run it, set:\n", b.Config, b.Metrics.ROCAUC)
		for _, e := range b.Env {
			fmt.Fprintf(w, "  %s\n", e)
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

// PlotROC draws every configuration's ROC curve, with the chance diagonal,
// as a PNG (or SVG or PDF, by the name's extension) at path.
func PlotROC(r *Report, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("ROC, %d pairs (%d relevant)", r.Pairs, r.Relevant)
	p.X.Label.Text = "false-positive rate"
	p.Y.Label.Text = "true-positive rate"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(4), vg.Points(4)
	p.Legend.TextStyle.Font.Size = vg.Points(7)
	chance, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return err
	}
	chance.Color = color.Gray{Y: 160}
	chance.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(chance)
	for n, i := range r.ranked() {
		res := r.Results[i]
		xy := make(plotter.XYs, len(res.ROC))
		for j, pt := range res.ROC {
			xy[j].X, xy[j].Y = pt.FPR, pt.TPR
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = palette[n%len(palette)]
		l.Width = vg.Points(1)
		if n >= len(palette) {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		if res.Config == r.Best {
			l.Width = vg.Points(2.5)
		}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s  %.3f", res.Config, res.Metrics.ROCAUC), l)
	}
	return p.Save(7*vg.Inch, 6*vg.Inch, path)
}

// palette is the Okabe-Ito set, distinguishable with most colour vision.
var palette = []color.Color{
	color.RGBA{0, 0, 0, 255}, color.RGBA{230, 159, 0, 255}, color.RGBA{86, 180, 233, 255},
	color.RGBA{0, 158, 115, 255}, color.RGBA{240, 228, 66, 255}, color.RGBA{0, 114, 178, 255},
	color.RGBA{213, 94, 0, 255}, color.RGBA{204, 121, 167, 255},
}
