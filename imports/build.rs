//! Builds the plugin component that the host embeds as its built-in plugin.

fn main() {
    let plugin = hoist_wasm_build::build_component("hoist-plugin", "hoist_plugin.wasm");
    println!("cargo:rustc-env=HOIST_BUILTIN_PLUGIN={}", plugin.display());
}
