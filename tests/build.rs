//! Builds the components the tests run: the plugin and the CLI.

fn main() {
    let plugin = hoist_wasm_build::build_component("hoist-plugin", "hoist_plugin.wasm");
    println!("cargo:rustc-env=HOIST_PLUGIN_WASM={}", plugin.display());
    let cli = hoist_wasm_build::build_component("hoist-cli", "hoist.wasm");
    println!("cargo:rustc-env=HOIST_CLI_WASM={}", cli.display());
}
