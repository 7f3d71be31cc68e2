// libcni-driver runs a CNI network configuration list through libcni, the library that containerd's CRI
// plugin, CRI-O and Multus embed, the way those runtimes do: ADD, CHECK or DEL of the whole conflist with
// CNI_ARGS as label pairs and CAP_ARGS (JSON) as capability args, which libcni turns into runtimeConfig.
//
//	libcni-driver ADD|CHECK|DEL <conflist>
//
// Environment: CNI_PATH, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS (K=V;K=V), CAP_ARGS, CNI_CACHE_DIR.
// Prints the ADD result (or the error's JSON) on stdout; exit 1 on failure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func fail(err error) {
	var e *types.Error
	if errors.As(err, &e) {
		out, _ := json.Marshal(map[string]interface{}{"code": e.Code, "msg": err.Error(), "details": e.Details})
		fmt.Println(string(out))
	} else {
		out, _ := json.Marshal(map[string]interface{}{"code": 999, "msg": err.Error()})
		fmt.Println(string(out))
	}
	os.Exit(1)
}

func labels(raw string) [][2]string {
	var out [][2]string
	for _, pair := range strings.Split(raw, ";") {
		if kv := strings.SplitN(pair, "=", 2); len(kv) == 2 {
			out = append(out, [2]string{kv[0], kv[1]})
		}
	}
	return out
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: libcni-driver ADD|CHECK|DEL <conflist>")
		os.Exit(2)
	}
	list, err := libcni.ConfListFromFile(os.Args[2])
	if err != nil {
		fail(err)
	}
	capArgs := map[string]interface{}{}
	if raw := os.Getenv("CAP_ARGS"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &capArgs); err != nil {
			fail(fmt.Errorf("CAP_ARGS: %v", err))
		}
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    os.Getenv("CNI_CONTAINERID"),
		NetNS:          os.Getenv("CNI_NETNS"),
		IfName:         os.Getenv("CNI_IFNAME"),
		Args:           labels(os.Getenv("CNI_ARGS")),
		CapabilityArgs: capArgs,
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	ctx := context.Background()
	switch os.Args[1] {
	case "ADD":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		out, _ := json.Marshal(res)
		fmt.Println(string(out))
	case "CHECK":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "DEL":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown command %s", os.Args[1]))
	}
}
