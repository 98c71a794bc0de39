import { Tokenizer, type QuoteType, type TokenizerCallbacks } from 'htmlparser2';

/** The attributes of one tag that its handler asked for (first occurrence wins, names lower-cased). */
export type Attributes = Partial<Record<string, string>>;

export interface TagHandler {
  /** Whether an attribute's value is read; the values of all others are never cut out of the page. */
  keepAttribute(tag: string, name: string): boolean;
  onOpenTag(name: string, attribs: Attributes): void;
  onCloseTag(name: string): void;
  /** Whether text is wanted at this point (inside <style>, say); text nobody wants is skipped, not copied. */
  wantsText(): boolean;
  onText(text: string): void;
}

const NO_ATTRIBUTES: Attributes = Object.freeze({});
/** Elements that start foreign content (where `<x/>` closes itself) and the HTML integration points inside it. */
const FOREIGN = new Set(['svg', 'math']);
const INTEGRATION = new Set(['mi', 'mo', 'mn', 'ms', 'mtext', 'annotation-xml', 'foreignobject', 'desc', 'title']);

/**
 * Open and close tags out of a streamed HTML document, on htmlparser2's Tokenizer (the one its Parser runs on:
 * the same handling of comments, CDATA, <script>/<style>/<textarea>/<title> raw text, entities and chunk
 * boundaries). It does less than the Parser, which was half of a worker's CPU on large pages: no text is sliced
 * out of the page unless asked for, only the attribute values asked for are, and there is no open-element stack
 * (no implied closes: a handler that counts nesting must ignore unbalanced close tags). Tag and attribute names
 * are lower-cased, attribute entities decoded, and a self-closing tag closes itself only in SVG/MathML, as in
 * the HTML parser.
 */
export class TagScanner implements TokenizerCallbacks {
  private readonly tokenizer: Tokenizer;
  private readonly buffers: string[] = [];
  private bufferOffset = 0;
  private tag = '';
  private attribs: Attributes | null = null;
  private attribName = '';
  private attribValue = '';
  private keep = false;
  /** true inside foreign content, false inside an integration point there (innermost first). */
  private readonly foreign: boolean[] = [];

  constructor(private readonly handler: TagHandler) {
    this.tokenizer = new Tokenizer({ decodeEntities: true }, this);
  }

  write(chunk: string): void {
    this.buffers.push(chunk);
    this.tokenizer.write(chunk);
  }

  end(): void {
    this.tokenizer.end();
  }

  /** The text between two absolute offsets of the stream, across the chunks it was written in. */
  private slice(start: number, end: number): string {
    while (start - this.bufferOffset >= this.buffers[0]!.length) this.shiftBuffer();
    let text = this.buffers[0]!.slice(start - this.bufferOffset, end - this.bufferOffset);
    while (end - this.bufferOffset > this.buffers[0]!.length) {
      this.shiftBuffer();
      text += this.buffers[0]!.slice(0, end - this.bufferOffset);
    }
    return text;
  }

  private shiftBuffer(): void {
    this.bufferOffset += this.buffers[0]!.length;
    this.buffers.shift();
  }

  onopentagname(start: number, endIndex: number): void {
    this.tag = this.slice(start, endIndex).toLowerCase();
    this.attribs = null;
    if (FOREIGN.has(this.tag)) this.foreign.unshift(true);
    else if (INTEGRATION.has(this.tag) && this.foreign.length > 0) this.foreign.unshift(false);
  }

  onattribname(start: number, endIndex: number): void {
    this.attribName = this.slice(start, endIndex).toLowerCase();
    this.keep = this.handler.keepAttribute(this.tag, this.attribName);
  }

  onattribdata(start: number, endIndex: number): void {
    if (this.keep) this.attribValue += this.slice(start, endIndex);
  }

  onattribentity(codepoint: number): void {
    if (this.keep) this.attribValue += String.fromCodePoint(codepoint);
  }

  onattribend(_quote: QuoteType, _endIndex: number): void {
    if (this.keep) {
      this.attribs ??= {};
      if (!Object.hasOwn(this.attribs, this.attribName)) this.attribs[this.attribName] = this.attribValue;
      this.attribValue = '';
      this.keep = false;
    }
  }

  onopentagend(_endIndex: number): void {
    this.handler.onOpenTag(this.tag, this.attribs ?? NO_ATTRIBUTES);
  }

  onselfclosingtag(_endIndex: number): void {
    const tag = this.tag;
    this.handler.onOpenTag(tag, this.attribs ?? NO_ATTRIBUTES);
    if (this.foreign[0] === true) this.close(tag);
  }

  onclosetag(start: number, endIndex: number): void {
    this.close(this.slice(start, endIndex).toLowerCase());
  }

  private close(tag: string): void {
    if (this.foreign.length > 0 && (FOREIGN.has(tag) || INTEGRATION.has(tag))) this.foreign.shift();
    this.handler.onCloseTag(tag);
  }

  ontext(start: number, endIndex: number): void {
    if (this.handler.wantsText()) this.handler.onText(this.slice(start, endIndex));
  }

  ontextentity(codepoint: number, _endIndex: number): void {
    if (this.handler.wantsText()) this.handler.onText(String.fromCodePoint(codepoint));
  }

  oncdata(): void {}
  oncomment(): void {}
  ondeclaration(): void {}
  onprocessinginstruction(): void {}
  onend(): void {}
}
