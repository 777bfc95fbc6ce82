/** A fixed-size set of operation ids: which operations the current partial linearization contains. */
export class Bitset {
  private constructor(private readonly words: Uint32Array) {}

  static ofSize(bits: number): Bitset {
    return new Bitset(new Uint32Array(Math.max(1, Math.ceil(bits / 32))));
  }

  set(bit: number): void {
    this.words[bit >>> 5]! |= 1 << (bit & 31);
  }

  clear(bit: number): void {
    this.words[bit >>> 5]! &= ~(1 << (bit & 31));
  }

  clone(): Bitset {
    return new Bitset(this.words.slice());
  }

  equals(other: Bitset): boolean {
    const a = this.words;
    const b = other.words;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) return false;
    }
    return true;
  }

  hash(): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < this.words.length; i++) {
      h ^= this.words[i]!;
      h = Math.imul(h, 0x01000193);
      h ^= h >>> 15;
    }
    return h >>> 0;
  }
}
