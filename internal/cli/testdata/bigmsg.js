// Sends one message of MSG_MB megabytes on its channel, then idles.
const mb = Number(process.env.MSG_MB || 1);
process.on('disconnect', () => console.error('channel closed by tend'));
process.send({ big: 'x'.repeat(mb * (1 << 20)) });
console.log('sent', mb, 'MB');
setInterval(() => {}, 1000);
