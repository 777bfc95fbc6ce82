import { describe, expect, it } from "vitest";
import { sampleConfig } from "../../src/config/index.js";
import { CephImageStore, FileImageStore, imageStoreFromConfig } from "../../src/image/index.js";

const secret = "0b7c3f6e-4f5a-4c1e-9d55-6c3ad7d3f1a2";

describe("imageStoreFromConfig", () => {
  it("CephConf: the RBD image PoolName/ImageName on MonAddrs as client.zsha", () => {
    const config = sampleConfig("CephConf");
    const store = imageStoreFromConfig(config, { cephSecretUuid: secret });
    expect(store).toBeInstanceOf(CephImageStore);
    const disk = store.describeDisk();
    expect(disk).toMatchObject({ type: "rbd", pool: config.PoolName, image: config.ImageName, user: "zsha" });
    expect(disk.type === "rbd" && disk.monitors.map((m) => `${m.host}:${m.port}`)).toEqual(config.MonAddrs);
  });

  it("FileConf: ImageFolder/ImageName", () => {
    const config = sampleConfig("FileConf");
    const store = imageStoreFromConfig(config, { cephSecretUuid: secret });
    expect(store).toBeInstanceOf(FileImageStore);
    expect(store.describeDisk()).toEqual({
      type: "file",
      path: `${config.ImageFolder}/${config.ImageName}`,
      format: "raw",
    });
  });
});
