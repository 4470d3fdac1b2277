package kubernetes_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// contractEnv lists the environment variables of CONTRACT.md §4. The
// manifests may set only these.
var contractEnv = []string{
	"NATS_URL",
	"NATS_CREDS", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_NKEY_SEED",
	"NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY",
	"LANGEXTRACT_URL", "LANGEXTRACT_TIMEOUT", "LANGEXTRACT_MAX_RETRIES",
	"CIRCUIT_BREAKER_THRESHOLD", "CIRCUIT_BREAKER_TIMEOUT",
	"SEMANTIC_CACHE_MAX_SIZE", "SEMANTIC_CACHE_TTL_SECONDS", "SEMANTIC_CACHE_ENABLE_REDIS",
	"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "REDIS_TLS",
	"WORKER_CONCURRENCY",
	"HTTP_ADDR",
	"ADMIN_TOKEN",
	"LOG_LEVEL", "LOG_FORMAT",
	"HYBRID_VECTOR_WEIGHT", "HYBRID_PATTERN_WEIGHT",
	"HYBRID_MIN_WEIGHT", "HYBRID_MAX_WEIGHT",
	"HYBRID_ADAPTIVE", "HYBRID_STRATEGY",
	"PATTERN_SIMILARITY_WEIGHTS",
}

const (
	workerPort   = 8053
	minGraceSecs = 45 // the worker drains for up to 30 s
	jobStream    = "SCORING_JOBS"
	jobConsumer  = "hybrid-scorer"
)

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

func TestEnvNamesAreInContract(t *testing.T) {
	objs := manifests(t)
	d := theDeployment(t, objs)

	configMaps := map[string]map[string]string{}
	for _, o := range ofKind(objs, "ConfigMap") {
		var cm struct {
			Data map[string]string `yaml:"data"`
		}
		o.decode(t, &cm)
		configMaps[o.Metadata.Name] = cm.Data
		for k := range cm.Data {
			if !slices.Contains(contractEnv, k) {
				t.Errorf("%s: ConfigMap %s key %s is not an environment variable of CONTRACT.md §4", o.File, o.Metadata.Name, k)
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
			if !slices.Contains(contractEnv, k) {
				t.Errorf("%s: Secret %s key %s is not an environment variable of CONTRACT.md §4", o.File, o.Metadata.Name, k)
			}
		}
	}

	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if !slices.Contains(contractEnv, e.Name) {
				t.Errorf("container %s: env %s is not in CONTRACT.md §4", c.Name, e.Name)
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
			MinReplicaCount *int `yaml:"minReplicaCount"`
			MaxReplicaCount *int `yaml:"maxReplicaCount"`
			Triggers        []struct {
				Type     string            `yaml:"type"`
				Metadata map[string]string `yaml:"metadata"`
			} `yaml:"triggers"`
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
		t.Error("minReplicaCount and maxReplicaCount: want both set, min <= max")
	}

	if len(so.Spec.Triggers) != 1 {
		t.Fatalf("found %d triggers, want 1", len(so.Spec.Triggers))
	}
	tr := so.Spec.Triggers[0]
	if tr.Type != "nats-jetstream" {
		t.Errorf("trigger type = %q, want nats-jetstream", tr.Type)
	}
	want := map[string]string{
		"stream":   jobStream,
		"consumer": jobConsumer,
		"account":  "$G",
	}
	for k, v := range want {
		if tr.Metadata[k] != v {
			t.Errorf("trigger metadata %s = %q, want %q", k, tr.Metadata[k], v)
		}
	}
	if !strings.HasSuffix(tr.Metadata["natsServerMonitoringEndpoint"], ":8222") {
		t.Errorf("natsServerMonitoringEndpoint = %q, want the NATS monitoring port 8222", tr.Metadata["natsServerMonitoringEndpoint"])
	}
	lag, err := strconv.Atoi(tr.Metadata["lagThreshold"])
	if err != nil || lag <= 0 {
		t.Fatalf("lagThreshold = %q, want a positive integer", tr.Metadata["lagThreshold"])
	}
	if _, err := strconv.Atoi(tr.Metadata["activationLagThreshold"]); err != nil {
		t.Errorf("activationLagThreshold = %q, want an integer", tr.Metadata["activationLagThreshold"])
	}

	// KEDA's lag counts ack-pending jobs, so every replica contributes up to
	// WORKER_CONCURRENCY even with an empty backlog: the threshold must be
	// above it or the fleet scales itself up.
	for _, o := range ofKind(objs, "ConfigMap") {
		var cm struct {
			Data map[string]string `yaml:"data"`
		}
		o.decode(t, &cm)
		if v, ok := cm.Data["WORKER_CONCURRENCY"]; ok {
			conc, err := strconv.Atoi(v)
			if err != nil {
				t.Errorf("WORKER_CONCURRENCY = %q, not an integer", v)
			} else if conc >= lag {
				t.Errorf("WORKER_CONCURRENCY %d >= lagThreshold %d: in-flight jobs alone would trigger scale-up", conc, lag)
			}
		}
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
