package kubernetes_test

import (
	"encoding"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/topology"
)

// workerEnv returns the environment variables the worker reads: the env
// tags of its configuration struct. The manifests may set only these.
func workerEnv(t *testing.T) []string {
	t.Helper()
	var names []string
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		if env, ok := typ.Field(i).Tag.Lookup("env"); ok && env != "" {
			names = append(names, env)
		}
	}
	for _, want := range []string{"NATS_URL", "WORKER_CONCURRENCY", "WORKER_PREFETCH", "WORKER_BULK_SHARE", "ADMIN_TOKEN"} {
		if !slices.Contains(names, want) {
			t.Fatalf("config.Config has no env tag %s: the struct's tags changed shape", want)
		}
	}
	return names
}

const (
	workerPort   = 8053
	minGraceSecs = 45 // the worker drains for up to 30 s
)

// The two job classes' streams and durable consumers, one KEDA trigger each.
var classConsumers = map[string]string{
	topology.JobsStream: topology.Consumer,     // interactive: SCORING_JOBS / hybrid-scorer
	topology.BulkStream: topology.BulkConsumer, // bulk: SCORING_BULK / hybrid-scorer-bulk
}

// The subset of the Kubernetes objects the tests look at.

type meta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *struct {
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		Capabilities             *struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type deployment struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Selector labelSelector `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               *struct {
					RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
					RunAsUser    *int64 `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// object is one YAML document of one manifest file.
type object struct {
	File       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	node       *yaml.Node
}

func (o object) decode(t *testing.T, v any) {
	t.Helper()
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%s: %s %s: %v", o.File, o.Kind, o.Metadata.Name, err)
	}
}

// manifests reads every YAML document of every *.yaml / *.yml file in the
// directory, kustomization.yaml included.
func manifests(t *testing.T) []object {
	t.Helper()
	files, err := yamlFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no YAML files in the directory")
	}
	var objs []object
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				t.Fatalf("%s: %v", file, err)
			}
			if len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
				continue // an empty document, e.g. a trailing "---"
			}
			o := object{File: file, node: &n}
			if err := n.Decode(&o); err != nil {
				f.Close()
				t.Fatalf("%s: %v", file, err)
			}
			if o.Kind == "" || o.APIVersion == "" {
				f.Close()
				t.Fatalf("%s: a document without kind or apiVersion", file)
			}
			objs = append(objs, o)
		}
		f.Close()
	}
	return objs
}

func yamlFiles() ([]string, error) {
	entries, err := os.ReadDir(".")
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, e.Name())
		}
	}
	return files, nil
}

// only returns the one object of kind, failing unless there is exactly one
// (and, when apiVersion is not empty, unless it has that apiVersion).
func only(t *testing.T, objs []object, kind, apiVersion string) object {
	t.Helper()
	found := ofKind(objs, kind)
	if len(found) != 1 {
		t.Fatalf("found %d objects of kind %s, want 1", len(found), kind)
	}
	if apiVersion != "" && found[0].APIVersion != apiVersion {
		t.Errorf("%s apiVersion = %q, want %s", kind, found[0].APIVersion, apiVersion)
	}
	return found[0]
}

func ofKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// theDeployment returns the single worker Deployment.
func theDeployment(t *testing.T, objs []object) deployment {
	t.Helper()
	var d deployment
	only(t, objs, "Deployment", "").decode(t, &d)
	if len(d.Spec.Template.Spec.Containers) == 0 {
		t.Fatal("the Deployment has no containers")
	}
	return d
}

// workerContainer returns the container that exposes the worker port, and
// that port's name.
func workerContainer(t *testing.T, d deployment) (container, string) {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.ContainerPort == workerPort {
				return c, p.Name
			}
		}
	}
	t.Fatalf("no container of the Deployment declares containerPort %d", workerPort)
	return container{}, ""
}

// resolvePort turns a probe or Service port (a number or a port name) into a
// container port number of c, or 0.
func resolvePort(c container, port yaml.Node) int {
	if n, err := strconv.Atoi(port.Value); err == nil && port.ShortTag() == "!!int" {
		return n
	}
	for _, p := range c.Ports {
		if p.Name != "" && p.Name == port.Value {
			return p.ContainerPort
		}
	}
	return 0
}

// matches reports whether a selector's labels are all present in labels.
func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false // an empty selector selects everything: never what we want
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestNoNamespace(t *testing.T) {
	for _, o := range manifests(t) {
		if o.Metadata.Namespace != "" {
			t.Errorf("%s: %s %s sets namespace %q; the manifests are namespace-less",
				o.File, o.Kind, o.Metadata.Name, o.Metadata.Namespace)
		}
	}
}

func TestDeploymentPortsAndProbes(t *testing.T) {
	d := theDeployment(t, manifests(t))
	c, portName := workerContainer(t, d)
	if portName == "" {
		t.Errorf("container port %d has no name; the Service and PodMonitor refer to it by name", workerPort)
	}
	if c.Image == "" || !strings.Contains(c.Image, "hybridscore/worker") {
		t.Errorf("image = %q, want hybridscore/worker", c.Image)
	}

	probes := []struct {
		name  string
		probe *probe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, "/livez"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"startupProbe", c.StartupProbe, "/livez"},
	}
	for _, tt := range probes {
		t.Run(tt.name, func(t *testing.T) {
			if tt.probe == nil || tt.probe.HTTPGet == nil {
				t.Fatalf("no httpGet %s", tt.name)
			}
			if got := tt.probe.HTTPGet.Path; got != tt.path {
				t.Errorf("path = %q, want %q", got, tt.path)
			}
			if got := resolvePort(c, tt.probe.HTTPGet.Port); got != workerPort {
				t.Errorf("port %q resolves to %d, want %d", tt.probe.HTTPGet.Port.Value, got, workerPort)
			}
		})
	}
}

func TestDeploymentShutdownAndSecurity(t *testing.T) {
	d := theDeployment(t, manifests(t))
	pod := d.Spec.Template.Spec
	switch g := pod.TerminationGracePeriodSeconds; {
	case g == nil:
		t.Errorf("terminationGracePeriodSeconds is not set (default 30), want >= %d (drain timeout 30 s plus margin)", minGraceSecs)
	case *g < minGraceSecs:
		t.Errorf("terminationGracePeriodSeconds = %d, want >= %d (drain timeout 30 s plus margin)", *g, minGraceSecs)
	}

	c, _ := workerContainer(t, d)
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("the worker container has no securityContext")
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
		(pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot)
	if !nonRoot {
		t.Error("runAsNonRoot is not set")
	}
	uid := sc.RunAsUser
	if uid == nil && pod.SecurityContext != nil {
		uid = pod.SecurityContext.RunAsUser
	}
	if uid == nil || *uid != 65532 {
		t.Error("runAsUser is not 65532 (the image's user)")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("capabilities do not drop ALL")
	}

	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no %s request", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("no memory limit")
	}

	ann := d.Spec.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(workerPort) {
		t.Errorf("pod annotations %v lack prometheus.io/scrape=true and prometheus.io/port=%d", ann, workerPort)
	}
}

func TestEnvNamesAreWorkerVariables(t *testing.T) {
	objs := manifests(t)
	d := theDeployment(t, objs)
	known := workerEnv(t)

	configMaps := map[string]map[string]string{}
	for _, o := range ofKind(objs, "ConfigMap") {
		var cm struct {
			Data map[string]string `yaml:"data"`
		}
		o.decode(t, &cm)
		configMaps[o.Metadata.Name] = cm.Data
		for k := range cm.Data {
			if !slices.Contains(known, k) {
				t.Errorf("%s: ConfigMap %s key %s is not an environment variable of the worker (internal/config)", o.File, o.Metadata.Name, k)
			}
		}
	}
	secrets := map[string]map[string]string{}
	for _, o := range ofKind(objs, "Secret") {
		var s struct {
			Data       map[string]string `yaml:"data"`
			StringData map[string]string `yaml:"stringData"`
		}
		o.decode(t, &s)
		keys := map[string]string{}
		for k, v := range s.Data {
			keys[k] = v
		}
		for k, v := range s.StringData {
			keys[k] = v
		}
		secrets[o.Metadata.Name] = keys
		for k := range keys {
			if !slices.Contains(known, k) {
				t.Errorf("%s: Secret %s key %s is not an environment variable of the worker (internal/config)", o.File, o.Metadata.Name, k)
			}
		}
	}

	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if !slices.Contains(known, e.Name) {
				t.Errorf("container %s: env %s is not an environment variable of the worker (internal/config)", c.Name, e.Name)
			}
			if e.ValueFrom == nil {
				continue
			}
			if ref := e.ValueFrom.SecretKeyRef; ref != nil {
				if _, ok := secrets[ref.Name][ref.Key]; !ok {
					t.Errorf("container %s: env %s refers to Secret %s key %s, which no manifest defines", c.Name, e.Name, ref.Name, ref.Key)
				}
			}
			if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
				if _, ok := configMaps[ref.Name][ref.Key]; !ok {
					t.Errorf("container %s: env %s refers to ConfigMap %s key %s, which no manifest defines", c.Name, e.Name, ref.Name, ref.Key)
				}
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				if _, ok := configMaps[ef.ConfigMapRef.Name]; !ok {
					t.Errorf("container %s: envFrom ConfigMap %s is not defined", c.Name, ef.ConfigMapRef.Name)
				}
			}
			if ef.SecretRef != nil {
				if _, ok := secrets[ef.SecretRef.Name]; !ok {
					t.Errorf("container %s: envFrom Secret %s is not defined", c.Name, ef.SecretRef.Name)
				}
			}
		}
	}
}

// configMapData merges the data of every ConfigMap.
func configMapData(t *testing.T, objs []object) map[string]string {
	t.Helper()
	data := map[string]string{}
	for _, o := range ofKind(objs, "ConfigMap") {
		var cm struct {
			Data map[string]string `yaml:"data"`
		}
		o.decode(t, &cm)
		for k, v := range cm.Data {
			data[k] = v
		}
	}
	return data
}

// workerConfig returns the worker's configuration with the ConfigMaps'
// values applied to its defaults, parsed as the worker parses them.
func workerConfig(t *testing.T, objs []object) config.Config {
	t.Helper()
	c := config.Defaults()
	v := reflect.ValueOf(&c).Elem()
	byEnv := map[string]int{}
	for i := range v.NumField() {
		if env := v.Type().Field(i).Tag.Get("env"); env != "" {
			byEnv[env] = i
		}
	}
	for k, s := range configMapData(t, objs) {
		i, ok := byEnv[k]
		if !ok {
			continue // reported by TestEnvNamesAreWorkerVariables
		}
		f := v.Field(i)
		var err error
		u, text := f.Addr().Interface().(encoding.TextUnmarshaler)
		switch {
		case text: // as kong reads it (config.Timeout)
			err = u.UnmarshalText([]byte(s))
		case f.Type() == reflect.TypeFor[time.Duration]():
			var d time.Duration
			d, err = time.ParseDuration(s)
			f.SetInt(int64(d))
		case f.Kind() == reflect.String:
			f.SetString(s)
		case f.Kind() == reflect.Int:
			var n int
			n, err = strconv.Atoi(s)
			f.SetInt(int64(n))
		case f.Kind() == reflect.Float64:
			var x float64
			x, err = strconv.ParseFloat(s, 64)
			f.SetFloat(x)
		case f.Kind() == reflect.Bool:
			var b bool
			b, err = strconv.ParseBool(s)
			f.SetBool(b)
		default:
			t.Fatalf("%s: unsupported field kind %s", k, f.Kind())
		}
		if err != nil {
			t.Errorf("ConfigMap %s = %q: %v", k, s, err)
		}
	}
	return c
}

// TestConfigMapIsAValidWorkerConfig checks the ConfigMap values as the worker
// would at start: a bad value stops it with a message naming the variable.
func TestConfigMapIsAValidWorkerConfig(t *testing.T) {
	c := workerConfig(t, manifests(t))
	if err := c.Validate(); err != nil {
		t.Errorf("the worker would refuse the ConfigMap: %v", err)
	}
}

type trigger struct {
	Type     string            `yaml:"type"`
	Metadata map[string]string `yaml:"metadata"`
}

func TestScaledObject(t *testing.T) {
	objs := manifests(t)
	d := theDeployment(t, objs)
	soObj := only(t, objs, "ScaledObject", "keda.sh/v1alpha1")
	var so struct {
		Spec struct {
			ScaleTargetRef struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Name       string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicaCount *int      `yaml:"minReplicaCount"`
			MaxReplicaCount *int      `yaml:"maxReplicaCount"`
			Triggers        []trigger `yaml:"triggers"`
		} `yaml:"spec"`
	}
	soObj.decode(t, &so)

	ref := so.Spec.ScaleTargetRef
	if ref.Name != d.Metadata.Name {
		t.Errorf("scaleTargetRef.name = %q, want the Deployment %q", ref.Name, d.Metadata.Name)
	}
	if ref.Kind != "" && ref.Kind != "Deployment" {
		t.Errorf("scaleTargetRef.kind = %q, want Deployment", ref.Kind)
	}
	if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil ||
		*so.Spec.MinReplicaCount > *so.Spec.MaxReplicaCount {
		t.Fatal("minReplicaCount and maxReplicaCount: want both set, min <= max")
	}

	// One nats-jetstream trigger per job class, on the same server.
	cfg := workerConfig(t, objs)
	lags := map[string]int{} // by stream
	endpoints := map[string]bool{}
	for _, tr := range so.Spec.Triggers {
		stream := tr.Metadata["stream"]
		t.Run(stream, func(t *testing.T) {
			if tr.Type != "nats-jetstream" {
				t.Errorf("trigger type = %q, want nats-jetstream", tr.Type)
			}
			consumer, known := classConsumers[stream]
			if !known {
				t.Fatalf("trigger on stream %q, want one of the job streams %v", stream, slices.Sorted(maps.Keys(classConsumers)))
			}
			if _, dup := lags[stream]; dup {
				t.Fatalf("two triggers on stream %s", stream)
			}
			if tr.Metadata["consumer"] != consumer {
				t.Errorf("trigger consumer = %q, want %q", tr.Metadata["consumer"], consumer)
			}
			if tr.Metadata["account"] != "$G" {
				t.Errorf("trigger account = %q, want $G", tr.Metadata["account"])
			}
			ep := tr.Metadata["natsServerMonitoringEndpoint"]
			if !strings.HasSuffix(ep, ":8222") {
				t.Errorf("natsServerMonitoringEndpoint = %q, want the NATS monitoring port 8222", ep)
			}
			endpoints[ep] = true
			lag, err := strconv.Atoi(tr.Metadata["lagThreshold"])
			if err != nil || lag <= 0 {
				t.Fatalf("lagThreshold = %q, want a positive integer", tr.Metadata["lagThreshold"])
			}
			lags[stream] = lag
			if _, err := strconv.Atoi(tr.Metadata["activationLagThreshold"]); err != nil {
				t.Errorf("activationLagThreshold = %q, want an integer", tr.Metadata["activationLagThreshold"])
			}

			// KEDA's lag counts every job a replica holds (up to
			// WORKER_PREFETCH, both classes together) as ack pending, and a
			// new replica cannot take held jobs: a threshold at or below
			// what one replica holds adds replicas that find no work.
			if cfg.WorkerPrefetch >= lag {
				t.Errorf("WORKER_PREFETCH %d >= lagThreshold %d: jobs one replica holds would trigger scale-up", cfg.WorkerPrefetch, lag)
			}
		})
	}
	for stream := range classConsumers {
		if _, ok := lags[stream]; !ok {
			t.Errorf("no nats-jetstream trigger on stream %s (consumer %s)", stream, classConsumers[stream])
		}
	}
	if len(endpoints) > 1 {
		t.Errorf("triggers read different NATS servers %v", slices.Sorted(maps.Keys(endpoints)))
	}

	// Jobs being scored count as lag even with an empty backlog: the
	// interactive threshold must be above them or a busy fleet scales
	// itself up.
	if lag, ok := lags[topology.JobsStream]; ok && cfg.WorkerConcurrency >= lag {
		t.Errorf("WORKER_CONCURRENCY %d >= lagThreshold %d of %s: in-flight jobs alone would trigger scale-up", cfg.WorkerConcurrency, lag, topology.JobsStream)
	}

	// Delivery pauses silently when a consumer's MaxAckPending is reached:
	// the largest fleet must hold fewer jobs than that.
	maxAck := topology.Config{}.Defaults().MaxAckPending
	if held := *so.Spec.MaxReplicaCount * cfg.WorkerPrefetch; held >= maxAck {
		t.Errorf("maxReplicaCount %d × WORKER_PREFETCH %d = %d jobs held, not below the consumers' MaxAckPending %d",
			*so.Spec.MaxReplicaCount, cfg.WorkerPrefetch, held, maxAck)
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Kind      string   `yaml:"kind"`
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	if k.Kind != "Kustomization" {
		t.Errorf("kind = %q, want Kustomization", k.Kind)
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(r); err != nil {
			t.Errorf("kustomization lists %s: %v", r, err)
		}
	}
	if dup := len(k.Resources) - len(uniq(k.Resources)); dup > 0 {
		t.Errorf("kustomization lists %d resources twice", dup)
	}

	files, err := yamlFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "kustomization.yaml" || f == "kustomization.yml" {
			continue
		}
		if !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not listed in kustomization.yaml resources", f)
		}
	}
}

func uniq(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func TestSelectorsMatchPods(t *testing.T) {
	objs := manifests(t)
	d := theDeployment(t, objs)
	podLabels := d.Spec.Template.Metadata.Labels
	if !matches(d.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", d.Spec.Selector.MatchLabels, podLabels)
	}

	pdbObj := only(t, objs, "PodDisruptionBudget", "")
	var pdb struct {
		Spec struct {
			Selector       labelSelector `yaml:"selector"`
			MinAvailable   yaml.Node     `yaml:"minAvailable"`
			MaxUnavailable yaml.Node     `yaml:"maxUnavailable"`
		} `yaml:"spec"`
	}
	pdbObj.decode(t, &pdb)
	if !matches(pdb.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not match the pod labels %v", pdb.Spec.Selector.MatchLabels, podLabels)
	}
	if (pdb.Spec.MinAvailable.Kind == 0) == (pdb.Spec.MaxUnavailable.Kind == 0) {
		t.Error("PodDisruptionBudget must set exactly one of minAvailable and maxUnavailable")
	}

	pmObj := only(t, objs, "PodMonitor", "monitoring.coreos.com/v1")
	var pm struct {
		Spec struct {
			Selector            labelSelector `yaml:"selector"`
			PodMetricsEndpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"podMetricsEndpoints"`
		} `yaml:"spec"`
	}
	pmObj.decode(t, &pm)
	if !matches(pm.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("PodMonitor selector %v does not match the pod labels %v", pm.Spec.Selector.MatchLabels, podLabels)
	}
	_, portName := workerContainer(t, d)
	if len(pm.Spec.PodMetricsEndpoints) == 0 {
		t.Fatal("PodMonitor has no podMetricsEndpoints")
	}
	for _, ep := range pm.Spec.PodMetricsEndpoints {
		if ep.Port != portName || (ep.Path != "" && ep.Path != "/metrics") {
			t.Errorf("PodMonitor endpoint port %q path %q, want port %q path /metrics", ep.Port, ep.Path, portName)
		}
	}
}

func TestServiceTargetsNamedPort(t *testing.T) {
	objs := manifests(t)
	d := theDeployment(t, objs)
	c, portName := workerContainer(t, d)
	svcObj := only(t, objs, "Service", "")
	var svc struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string    `yaml:"name"`
				Port       int       `yaml:"port"`
				TargetPort yaml.Node `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	svcObj.decode(t, &svc)
	if !matches(svc.Spec.Selector, d.Spec.Template.Metadata.Labels) {
		t.Errorf("Service selector %v does not match the pod labels %v", svc.Spec.Selector, d.Spec.Template.Metadata.Labels)
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service has %d ports, want 1", len(svc.Spec.Ports))
	}
	p := svc.Spec.Ports[0]
	if p.Port != workerPort {
		t.Errorf("Service port = %d, want %d", p.Port, workerPort)
	}
	if p.TargetPort.Value != portName || p.TargetPort.ShortTag() != "!!str" {
		t.Errorf("Service targetPort = %q, want the container port name %q", p.TargetPort.Value, portName)
	}
	if resolvePort(c, p.TargetPort) != workerPort {
		t.Errorf("Service targetPort %q does not resolve to %d", p.TargetPort.Value, workerPort)
	}
}
