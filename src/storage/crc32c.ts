// CRC-32C (Castagnoli), the checksum LevelDB, ext4 and iSCSI use for stored data: better error detection than
// the zlib CRC-32 for the short bursts a torn write or a flipped sector produces. Node 20 has no built-in
// CRC, and a 256-entry table is small enough to own rather than add a native dependency for.

const POLY = 0x82f63b78; // the reflected Castagnoli polynomial

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `data`; pass a previous result as `crc` to continue over several pieces. */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
