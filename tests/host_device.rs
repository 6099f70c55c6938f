//! Embedding into an app that already owns a wgpu device: the model runs on the host's
//! device and queue and computes exactly what it computes on its own device.

mod common;

use edgeseek::wgpu;
use edgeseek::{DeviceOptions, LoadOptions, Model};

fn host_device() -> (wgpu::Device, wgpu::Queue) {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .expect("no GPU adapter: apt-get install mesa-vulkan-drivers");
    // A host that asked for no optional features and WebGPU's default limits.
    pollster::block_on(adapter.request_device(&Default::default())).unwrap()
}

#[test]
fn a_model_on_the_hosts_device_computes_the_same_logits() {
    let path = common::fixture("qwen2-Q4_K_M.gguf");
    let prompt = [304, 60, 224, 120, 161, 34, 363];
    let (device, queue) = host_device();
    let mut hosted = Model::load_on_device(&path, &LoadOptions::default(), device, queue).unwrap();
    assert!(
        !hosted.device().f16 && !hosted.device().subgroups,
        "uses only what the host enabled"
    );
    // Our own device with the same kernel choices: f32 KV, no subgroups.
    let device = DeviceOptions {
        no_f16: true,
        downlevel: true,
        ..Default::default()
    };
    let mut own = Model::load(
        &path,
        &LoadOptions {
            device,
            ..Default::default()
        },
    )
    .unwrap();
    let a = hosted.eval(&prompt).unwrap().to_vec();
    let b = own.eval(&prompt).unwrap().to_vec();
    assert_eq!(a, b, "same kernels, same inputs: bitwise equal");
    let a = hosted.eval(&[5]).unwrap().to_vec();
    let b = own.eval(&[5]).unwrap().to_vec();
    assert_eq!(a, b);
}
