// kstatus prints the kstatus verdict (InProgress, Current, Failed, ...) of one
// Kubernetes object read as JSON or YAML from stdin, computed by the real
// library Flux's health checks use: sigs.k8s.io/cli-utils/pkg/kstatus/status.
// With -json it prints the whole Result ({"status", "message", "conditions"}).
//
// Tests use it to prove MigrationRun status is kstatus-compliant (tests/helm).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

func main() {
	asJSON := flag.Bool("json", false, "print the whole kstatus Result as JSON")
	flag.Parse()
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	// YAML → JSON → Unstructured keeps integers int64, as the apiserver's client does.
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: parsing the object:", err)
		os.Exit(2)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(raw); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: decoding the object:", err)
		os.Exit(2)
	}
	res, err := status.Compute(obj)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
	if *asJSON {
		out, _ := json.Marshal(res)
		fmt.Println(string(out))
		return
	}
	fmt.Println(res.Status)
}
